"""The rules file: what it accepts, every refusal by name, and the round trip through YAML."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover_did.rules.model import DEFAULT_TRIGGERS, MAX_FAILOVER_TIERS, Final, Rule, Tier
from failover_did.rules.validate import RulesError, parse_rules, parse_rules_yaml, rules_to_yaml
from tests.support import one_problem, problems_of

FULL = """\
numbers:
  "+14155550100":                    # the Twilio number
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sip:oncall@dr.example.net", screen: true, health: "https://dr.example.net/health"}
    triggers: [timeout, busy, failed, "503"]
    final: {say: "Sorry, nobody can take your call.", voicemail: true}
"""


def rule_yaml(body: str, number: str = '"+14155550100"') -> str:
    """A file with one number whose rule body is `body` (a YAML flow mapping or block)."""
    return f"numbers:\n  {number}: {body}\n"


# --- accepted files ---------------------------------------------------------------------------


def test_full_example_is_accepted_as_written() -> None:
    rules = parse_rules_yaml(FULL)
    assert rules == {
        "+14155550100": Rule(
            number="+14155550100",
            tiers=(
                Tier(target="sip:frontdesk@pbx.example.com", timeout=15),
                Tier(target="+14155550111", timeout=20),
                Tier(
                    target="sip:oncall@dr.example.net",
                    timeout=20,
                    screen=True,
                    health="https://dr.example.net/health",
                ),
            ),
            triggers=frozenset({"timeout", "busy", "failed", "503"}),
            final=Final(say="Sorry, nobody can take your call.", voicemail=True),
        )
    }


def test_minimal_rule_gets_the_defaults() -> None:
    rules = parse_rules_yaml(rule_yaml('{primary: {target: "+14155550111"}}'))
    rule = rules["+14155550100"]
    assert rule.tiers == (Tier(target="+14155550111", timeout=20, screen=False, health=None),)
    assert rule.triggers == frozenset(DEFAULT_TRIGGERS)
    assert rule.final == Final()


def test_numbers_and_targets_are_stored_in_e164() -> None:
    rules = parse_rules_yaml(rule_yaml('{primary: {target: "+44 20 7183 8750"}}', number='"+1 (415) 555-0100"'))
    assert list(rules) == ["+14155550100"]
    assert rules["+14155550100"].number == "+14155550100"
    assert rules["+14155550100"].primary.target == "+442071838750"


def test_empty_numbers_is_accepted() -> None:
    assert parse_rules_yaml("numbers: {}") == {}
    assert parse_rules_yaml("numbers:\n") == {}


def test_triggers_codes_and_classes_are_normalised_and_collapsed() -> None:
    text = rule_yaml('{primary: {target: "+14155550111"}, triggers: [busy, 503, "503", "5XX", Busy, 486, "6xx"]}')
    rule = parse_rules_yaml(text)["+14155550100"]
    assert rule.triggers == frozenset({"busy", "503", "5xx", "486", "6xx"})


def test_health_may_be_a_sip_uri_or_http_url() -> None:
    text = """\
    numbers:
      "+14155550100":
        primary: {target: "sip:a@pbx.example.com", health: "sip:pbx.example.com;transport=tcp"}
        failover:
          - {target: "sip:b@pbx.example.com", health: "http://10.0.0.5:8080/ok"}
    """
    rule = parse_rules_yaml(textwrap.dedent(text), allow_private=True)["+14155550100"]
    assert [t.health for t in rule.tiers] == ["sip:pbx.example.com;transport=tcp", "http://10.0.0.5:8080/ok"]


def test_timeout_bounds_are_inclusive() -> None:
    # 600 is Twilio's own limit; a cascade as a whole rings at most 300 s (test_rules_hostile.py).
    text = rule_yaml('{primary: {target: "+14155550111", timeout: 5}, failover: [{target: "+14155550112"}]}')
    assert [t.timeout for t in parse_rules_yaml(text)["+14155550100"].tiers] == [5, 20]
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111", timeout: 600}}'))
    assert "605 s" in problem and ".primary.timeout" not in problem


def test_max_failover_tiers_is_allowed() -> None:
    tiers = ", ".join(f'{{target: "+1212555{i:04d}"}}' for i in range(MAX_FAILOVER_TIERS))
    rule = parse_rules_yaml(rule_yaml(f'{{primary: {{target: "+14155550111"}}, failover: [{tiers}]}}'))
    assert len(rule["+14155550100"].failover) == MAX_FAILOVER_TIERS


# --- refusals, one at a time ------------------------------------------------------------------


def test_unquoted_number_key_is_explained() -> None:
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111"}}', number="+14155550100"))
    assert problem.startswith("numbers.14155550100: ")
    assert "integer" in problem
    assert 'write it in quotes: "+14155550100"' in problem


def test_unquoted_number_without_country_code_gets_a_generic_hint() -> None:
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111"}}', number="0"))
    assert 'with the leading "+" and country code' in problem


def test_unquoted_target_is_explained() -> None:
    problem = one_problem(rule_yaml("{primary: {target: +14155550111}}"))
    assert problem == (
        'numbers."+14155550100".primary.target: 14155550111 was read as a number, not text; '
        'write it in quotes: "+14155550111"'
    )


def test_emergency_target_is_refused_with_location_and_value() -> None:
    text = rule_yaml('{primary: {target: "+14155550111"}, failover: [{target: "+14155550112"}, {target: "+1911"}]}')
    problem = one_problem(text)
    assert problem.startswith('numbers."+14155550100".failover[1].target: "+1911" is an emergency number')
    assert problem.endswith("emergency calls must never go through failover rules")


@pytest.mark.parametrize("target", ["sip:911@pbx.example.com", "urn:service:sos", "+44 999", "+61000", "+1988"])
def test_emergency_targets_of_all_kinds_are_refused(target: str) -> None:
    problem = one_problem(rule_yaml(f'{{primary: {{target: "{target}"}}}}'))
    assert problem.startswith(f'numbers."+14155550100".primary.target: "{target}"')
    assert "emergency" in problem


def test_emergency_number_as_a_key_is_refused() -> None:
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111"}}', number='"+1911"'))
    assert problem.startswith('numbers."+1911": ')
    assert "emergency" in problem


def test_target_equal_to_its_own_number_is_a_loop() -> None:
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111"}, failover: [{target: "+14155550100"}]}'))
    assert (
        problem
        == 'numbers."+14155550100".failover[0].target: "+14155550100" is itself a number in these rules (a loop)'
    )


def test_target_equal_to_another_number_of_the_file_is_a_loop_even_in_another_form() -> None:
    text = """\
    numbers:
      "+14155550100": {primary: {target: "+1 415 555 0101"}}
      "+14155550101": {primary: {target: "+14155550111"}}
    """
    problem = one_problem(text)
    assert problem.startswith('numbers."+14155550100".primary.target: "+1 415 555 0101"')
    assert "loop" in problem


def test_target_equal_to_a_known_number_is_a_loop() -> None:
    text = rule_yaml('{primary: {target: "+14155550199"}}')
    problem = one_problem(text, known_numbers=["+1 415 555 0199"])
    assert '"+14155550199"' in problem and "loop" in problem
    # the number being replaced may itself be among the known ones
    assert parse_rules_yaml(rule_yaml('{primary: {target: "+14155550111"}}'), known_numbers=["+14155550100"])


def test_two_keys_for_the_same_number_are_refused() -> None:
    text = """\
    numbers:
      "+14155550100": {primary: {target: "+14155550111"}}
      "+1 415 555 0100": {primary: {target: "+14155550112"}}
    """
    problem = one_problem(text)
    assert problem == (
        'numbers."+1 415 555 0100": "+1 415 555 0100" is the same number as "+14155550100"; give each number once'
    )


def test_a_key_written_twice_is_not_silently_dropped() -> None:
    text = """\
    numbers:
      "+14155550100": {primary: {target: "+14155550111"}}
      "+14155550100": {primary: {target: "+14155550112"}}
    """
    with pytest.raises(RulesError) as err:
        parse_rules_yaml(textwrap.dedent(text), source="rules.yaml")
    assert err.value.lines() == ['rules.yaml: line 3: "+14155550100" appears twice in the same mapping']


def test_sip_uri_as_a_number_key_is_refused() -> None:
    problem = one_problem(rule_yaml('{primary: {target: "+14155550111"}}', number='"sip:desk@pbx.example.com"'))
    assert "not a SIP URI" in problem


@pytest.mark.parametrize(
    ("body", "where", "key", "hint"),
    [
        ('{primary: {target: "+14155550111", timout: 15}}', ".primary", "timout", "timeout"),
        ('{primary: {target: "+14155550111"}, failovers: []}', "", "failovers", "failover"),
        (
            '{primary: {target: "+14155550111"}, failover: [{target: "+14155550112", scren: true}]}',
            ".failover[0]",
            "scren",
            "screen",
        ),
        ('{primary: {target: "+14155550111"}, final: {sya: "hi"}}', ".final", "sya", "say"),
        ('{primary: {target: "+14155550111"}, colour: blue}', "", "colour", None),
    ],
)
def test_unknown_keys_are_named_with_the_allowed_ones(body: str, where: str, key: str, hint: str | None) -> None:
    problem = one_problem(rule_yaml(body))
    assert problem.startswith(f'numbers."+14155550100"{where}: unknown key "{key}"')
    assert "allowed keys:" in problem
    if hint:
        assert f'did you mean "{hint}"' in problem


@pytest.mark.parametrize(
    ("tier", "message"),
    [
        (
            '{target: "+14155550111", timeout: 4}',
            ".primary.timeout: 4 must be a whole number of seconds from 5 to 600",
        ),
        ('{target: "+14155550111", timeout: 601}', ".primary.timeout: 601 must be a whole number"),
        ('{target: "+14155550111", timeout: "20"}', '.primary.timeout: "20" must be a whole number'),
        ('{target: "+14155550111", timeout: true}', ".primary.timeout: true must be a whole number"),
        ('{target: "+14155550111", timeout: 20.5}', ".primary.timeout: 20.5 must be a whole number"),
        ('{target: "+14155550111", screen: "yes"}', '.primary.screen: "yes" must be true or false'),
        ('{target: "sips:pbx.example.com", tls_verify: "no"}', '.primary.tls_verify: "no" must be true or false'),
        (
            '{target: "+14155550111", health: "ftp://x.example.com"}',
            '.primary.health: "ftp://x.example.com": it must be an http(s) URL or a sip:/sips: URI',
        ),
        ('{target: "+14155550111", health: "https://"}', '.primary.health: "https://": it must be'),
        ('{target: "+14155550111", health: "sip:"}', '.primary.health: "sip:" is not a valid SIP URI'),
        ("{timeout: 20}", '.primary: "target" is missing'),
        ('"+14155550111"', ".primary: must be a mapping like"),
        ('{target: "4155550111"}', ".primary.target: \"4155550111\" needs the leading '+' and country code"),
        ('{target: "pbx.example.com"}', '.primary.target: "pbx.example.com" is neither an E.164 number'),
    ],
)
def test_tier_problems(tier: str, message: str) -> None:
    problem = one_problem(rule_yaml(f"{{primary: {tier}}}"))
    assert problem.startswith(f'numbers."+14155550100"{message}'), problem


def test_primary_is_required() -> None:
    problem = one_problem(rule_yaml('{failover: [{target: "+14155550111"}]}'))
    assert problem == 'numbers."+14155550100": "primary" is missing; every number needs a primary target'


def test_too_many_failover_tiers() -> None:
    tiers = ", ".join(f'{{target: "+1212555{i:04d}"}}' for i in range(MAX_FAILOVER_TIERS + 1))
    problem = one_problem(rule_yaml(f'{{primary: {{target: "+14155550111"}}, failover: [{tiers}]}}'))
    assert f"{MAX_FAILOVER_TIERS + 1} tiers; at most {MAX_FAILOVER_TIERS}" in problem


@pytest.mark.parametrize(
    ("triggers", "message"),
    [
        ("[]", ".triggers: must be a non-empty list"),
        ("busy", ".triggers: must be a non-empty list"),
        ("[busy, no-answer]", '.triggers[1]: "no-answer" is not a trigger; use "timeout"'),
        ("[200]", ".triggers[0]: 200 is not a trigger"),
        ('["700"]', '.triggers[0]: "700" is not a trigger'),
        ('["7xx"]', '.triggers[0]: "7xx" is not a trigger'),
        ("[completed]", '.triggers[0]: "completed" is not a trigger'),
        ("[true]", ".triggers[0]: true is not a trigger"),
    ],
)
def test_trigger_problems(triggers: str, message: str) -> None:
    problem = one_problem(rule_yaml(f'{{primary: {{target: "+14155550111"}}, triggers: {triggers}}}'))
    assert problem.startswith(f'numbers."+14155550100"{message}'), problem


@pytest.mark.parametrize(
    ("final", "message"),
    [
        ('{say: ""}', '.final.say: "" must be a non-empty text'),
        ('{say: "   "}', '.final.say: "   " must be a non-empty text'),
        ("{say: 12}", ".final.say: 12 must be a non-empty text"),
        ('{say: "' + "x" * 501 + '"}', ".final.say: 501 characters; at most 500"),
        ("{voicemail: 1}", ".final.voicemail: 1 must be true or false"),
        ("[say]", ".final: must be a mapping"),
    ],
)
def test_final_problems(final: str, message: str) -> None:
    problem = one_problem(rule_yaml(f'{{primary: {{target: "+14155550111"}}, final: {final}}}'))
    assert problem.startswith(f'numbers."+14155550100"{message}'), problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the rules file is empty"),
        ("- 1\n", 'the top level must be a mapping with the key "numbers", not a list'),
        ("rules: {}\n", 'unknown top-level key "rules"'),
        ("numbers: [1]\n", '"numbers" must be a mapping'),
        ('numbers:\n  "+14155550100":\n', 'numbers."+14155550100": must be a mapping'),
    ],
)
def test_top_level_problems(text: str, message: str) -> None:
    assert any(p.startswith(message) for p in problems_of(text)), problems_of(text)


def test_yaml_syntax_error_names_the_source_and_line() -> None:
    with pytest.raises(RulesError) as err:
        parse_rules_yaml('numbers:\n  "+14155550100": {primary: {target: "+1415555011\n', source="my.yaml")
    assert str(err.value).startswith("my.yaml: line ")
    assert "invalid YAML" in str(err.value)


def test_yaml_syntax_error_line_number() -> None:
    problem = one_problem("numbers:\n  a: b\n c: d\n", source="f.yaml")
    assert problem.startswith("line 3"), problem


# --- every problem at once ----------------------------------------------------------------------


def test_all_problems_are_collected_at_once() -> None:
    text = """\
    numbers:
      +14155550100:
        primary: {target: 14155550111}
      "+14155550102":
        primary: {target: "+1911", timout: 10}
        failover:
          - {target: "+14155550102", timeout: 3}
          - {target: "+14155550199"}
        triggers: [no-answer, busy]
        final: {say: "", voicemail: 1}
        extra: 1
      "+1 415 555 0102":
        primary: {target: "sip:911@pbx.example.com"}
    oops: 1
    """
    problems = problems_of(text, known_numbers=["+14155550199"])
    expected_fragments = [
        'unknown top-level key "oops"',
        "numbers.14155550100: the number was read as an integer",
        "numbers.14155550100.primary.target: 14155550111 was read as a number",
        'numbers."+1 415 555 0102": "+1 415 555 0102" is the same number as "+14155550102"',
        'numbers."+1 415 555 0102".primary.target: "sip:911@pbx.example.com"',
        'numbers."+14155550102": unknown key "extra"',
        'numbers."+14155550102".primary: unknown key "timout"',
        'numbers."+14155550102".primary.target: "+1911" is an emergency number',
        'numbers."+14155550102".failover[0].target: "+14155550102" is itself a number in these rules (a loop)',
        'numbers."+14155550102".failover[0].timeout: 3',
        'numbers."+14155550102".failover[1].target: "+14155550199" is a number already routed',
        'numbers."+14155550102".triggers[0]: "no-answer"',
        'numbers."+14155550102".final.say: ""',
        'numbers."+14155550102".final.voicemail: 1',
    ]
    for fragment in expected_fragments:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected_fragments)


def test_rules_error_str_joins_problems_with_newlines() -> None:
    err = RulesError(["a: one", "b: two"])
    assert str(err) == "a: one\nb: two"
    assert err.problems == ["a: one", "b: two"]
    assert isinstance(err, ValueError)


def test_parse_rules_takes_a_loaded_document() -> None:
    doc = {"numbers": {"+14155550100": {"primary": {"target": "+14155550111"}, "triggers": [503]}}}
    assert parse_rules(doc)["+14155550100"].triggers == frozenset({"503"})
    with pytest.raises(RulesError):
        parse_rules({"numbers": {"+14155550100": {"primary": {"target": "+14155550100"}}}})


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_of_the_full_example() -> None:
    rules = parse_rules_yaml(FULL)
    text = rules_to_yaml(rules)
    assert parse_rules_yaml(text) == rules
    assert '"+14155550100"' in text or "'+14155550100'" in text  # quoted, not an int


def test_round_trip_of_no_rules() -> None:
    assert parse_rules_yaml(rules_to_yaml({})) == {}


_KEY_NUMBERS = [f"+1415555{i:04d}" for i in range(100, 200)]
_PHONE_TARGETS = [f"+1212555{i:04d}" for i in range(100, 200)] + [f"+442071838{i:03d}" for i in range(100)]
_LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_HOST = st.builds(lambda a, b: f"{a}.{b}.example", _LABEL, _LABEL)
_SIP_TARGET = st.builds(
    lambda user, host, tail: f"sip:{user}@{host}{tail}",
    st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True),
    _HOST,
    st.sampled_from(["", ":5080", ";transport=tcp", ":5061;transport=tls"]),
)
_TARGET = st.one_of(st.sampled_from(_PHONE_TARGETS), _SIP_TARGET)
_HEALTH = st.one_of(
    st.none(),
    st.builds(lambda h: f"https://{h}/health", _HOST),
    st.builds(lambda h: f"sip:{h}", _HOST),
)
_TIER = st.builds(
    Tier,
    target=_TARGET,
    timeout=st.integers(5, 600),
    screen=st.booleans(),
    health=_HEALTH,
    tls_verify=st.booleans(),
)
# Spoken text: anything but controls (tab, line feed and carriage return aside), surrogates and noncharacters.
_SAY_CHAR = st.characters(exclude_categories=["Cs", "Cc"]).filter(
    lambda c: not 0xFDD0 <= ord(c) <= 0xFDEF and (ord(c) & 0xFFFE) != 0xFFFE
) | st.sampled_from("\t\n\r")
_TRIGGERS = st.frozensets(
    st.sampled_from(["timeout", "busy", "failed", "486", "503", "408", "600", "5xx", "6xx", "3xx"]),
    min_size=1,
)
_SAY = st.text(_SAY_CHAR, min_size=1, max_size=500).filter(lambda s: bool(s.strip()))
_FINAL = st.builds(Final, say=_SAY, voicemail=st.booleans())


@st.composite
def _rules(draw: st.DrawFn) -> dict[str, Rule]:
    numbers = draw(st.lists(st.sampled_from(_KEY_NUMBERS), unique=True, max_size=4))
    rules = {}
    for number in numbers:
        tiers = draw(st.lists(_TIER, min_size=1, max_size=MAX_FAILOVER_TIERS + 1))
        # A cascade rings at most 300 s in all (each timeout + 5 s): share that among the tiers.
        tiers = [replace(t, timeout=min(t.timeout, 300 // len(tiers) - 5)) for t in tiers]
        rules[number] = Rule(number=number, tiers=tuple(tiers), triggers=draw(_TRIGGERS), final=draw(_FINAL))
    return rules


@settings(max_examples=80, deadline=None)
@given(_rules())
def test_round_trip_property(rules: dict[str, Rule]) -> None:
    assert parse_rules_yaml(rules_to_yaml(rules)) == rules


@settings(max_examples=400, deadline=None)
@given(_SAY)
def test_any_final_text_round_trips(say: str) -> None:
    rules = {"+14155550100": Rule(number="+14155550100", tiers=(Tier(target="+12125550100"),), final=Final(say=say))}
    assert parse_rules_yaml(rules_to_yaml(rules)) == rules


def test_tls_verify_is_read_kept_and_written_only_when_off() -> None:
    rules = parse_rules_yaml(
        'numbers:\n  "+14155550100":\n'
        '    primary: {target: "sip:desk@pbx.example.com;secure=true", tls_verify: false}\n'
        '    failover: [{target: "sips:dr.example.net"}]\n'
    )
    primary, failover = rules["+14155550100"].tiers
    assert (primary.tls_verify, failover.tls_verify) == (False, True)
    doc = rules["+14155550100"].to_doc()
    assert doc["primary"]["tls_verify"] is False
    assert "tls_verify" not in doc["failover"][0]
    assert Rule.from_doc("+14155550100", doc) == rules["+14155550100"]
