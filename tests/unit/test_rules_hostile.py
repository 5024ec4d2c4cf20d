"""Hostile and dangerous rules files: YAML bombs and deep nesting, control characters in spoken text,
URLs and hosts nobody can encode, addresses the checker must not probe, emergency numbers behind an
outside-line prefix, and cascades that ring longer than any caller waits. Each is refused (or warned
about) with one clear line naming where, the value (bounded) and why."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover_did.rules.loading import MAX_DEPTH, MAX_FILE_BYTES
from failover_did.rules.validate import RulesError, parse_rules, parse_rules_yaml
from failover_did.rules.warnings import rule_warnings
from tests.support import one_problem, problems_of

NUMBER = '"+14155550100"'
WHERE = 'numbers."+14155550100"'


def with_tier(tier: str) -> str:
    return f"numbers:\n  {NUMBER}: {{primary: {tier}}}\n"


def with_say(say: str) -> str:
    return f'numbers:\n  {NUMBER}: {{primary: {{target: "+14155550111"}}, final: {{say: "{say}"}}}}\n'


def peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    with contextlib.suppress(RulesError):
        work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# --- YAML bombs and hostile structure ----------------------------------------------------------------

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{chr(c)}: &{chr(c)} [{','.join(['*' + chr(c - 1)] * 9)}]\n" for c in range(ord("b"), ord("j")))
    + "numbers: *i\n"
)


def test_billion_laughs_is_refused_at_the_first_anchor_without_expanding() -> None:
    assert len(BILLION_LAUGHS) < 700  # expanded, it would be 9**9 = 387 million strings
    with pytest.raises(RulesError) as err:
        parse_rules_yaml(BILLION_LAUGHS, source="bomb.yaml")
    assert err.value.lines() == [
        "bomb.yaml: line 1, column 4: refused: anchors and aliases (&name, *name) are not accepted in a rules "
        "file; write each rule out in full"
    ]
    assert peak_bytes(lambda: parse_rules_yaml(BILLION_LAUGHS)) < 1_000_000


def test_an_alias_alone_is_refused_too() -> None:
    # An alias to nothing defined: the loader stops at the alias itself, not at a missing anchor.
    problem = one_problem("numbers: *rules\n")
    assert problem.startswith("line 1, column 10: refused: anchors and aliases") and "*name" in problem


def test_a_merge_key_from_an_anchor_is_refused() -> None:
    text = 'base: &base {timeout: 20}\nnumbers:\n  "+14155550100": {primary: {<<: *base, target: "+14155550111"}}\n'
    assert "refused: anchors and aliases" in one_problem(text)


def test_deep_nesting_is_refused_without_recursing() -> None:
    for depth, column in ((20_000, None), (500, MAX_DEPTH + 1)):
        text = "[" * depth + "]" * depth
        problem = one_problem(text)
        assert problem.endswith(
            f": refused: nested more than {MAX_DEPTH} levels deep; a rules file needs no more than 5"
        ), problem
        assert problem.startswith(f"line 1, column {column or ''}")
        assert peak_bytes(lambda text=text: parse_rules_yaml(text)) < 5_000_000


def test_deep_block_mappings_are_refused() -> None:
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(40)) + "  " * 40 + "x\n"
    assert f"nested more than {MAX_DEPTH} levels deep" in one_problem(text)


def test_nesting_a_rules_file_needs_is_accepted() -> None:
    text = (
        f'numbers:\n  {NUMBER}:\n    primary: {{target: "+14155550111"}}\n'
        '    failover:\n      - {target: "+14155550112"}\n'
    )
    assert list(parse_rules_yaml(text)) == ["+14155550100"]


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "# " + "x" * MAX_FILE_BYTES + "\n"
    problem = one_problem(text)
    assert problem == "the file is more than 4 MiB; a rules file may be at most 4 MiB (4,194,304 bytes)"


def test_an_integer_past_pythons_digit_limit_is_a_clear_problem() -> None:
    problem = one_problem(f'numbers:\n  {NUMBER}: {{primary: {{target: "+14155550111", timeout: {"9" * 5000}}}}}\n')
    assert problem.startswith("invalid YAML: ") and "digits" in problem and len(problem) < 200


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("numbers:\n  a\x00: 1\n", "line 2, column 4: invalid YAML: control characters are not allowed (#x0000)"),
        ('numbers: {"a": "x\x0b"}\n', "line 1, column 18: invalid YAML: control characters are not allowed (#x000b)"),
        ("numbers: \ud800\n", "invalid text: U+D800 at character 10 is not a character"),
        (
            "# ééé\nnumbers:\n  a\x00: 1\n",
            "line 3, column 4: invalid YAML: control characters are not allowed (#x0000)",
        ),
    ],
)
def test_raw_control_characters_in_the_file_are_one_line(text: str, problem: str) -> None:
    assert problems_of(text) == [problem]


def test_broken_yaml_names_the_file_once_per_line() -> None:
    with pytest.raises(RulesError) as err:
        parse_rules_yaml('numbers:\n  "+14155550100": {primary: {target: "+1415555011\n', source="my.yaml")
    (line,) = err.value.lines()
    assert line.startswith("my.yaml: line ") and line.count("my.yaml") == 1 and "invalid YAML" in line
    assert str(err.value) == line


def test_every_problem_line_names_the_file_once() -> None:
    text = f'numbers:\n  {NUMBER}: {{primary: {{target: "+1911"}}}}\n  {NUMBER}: {{}}\n'
    with pytest.raises(RulesError) as err:
        parse_rules_yaml(text, source="r.yaml")
    assert len(err.value.lines()) >= 2
    assert all(line.startswith("r.yaml: ") and line.count("r.yaml") == 1 for line in err.value.lines())


def test_a_huge_value_is_shown_bounded() -> None:
    huge = "x" * 100_000
    problem = one_problem(with_tier(f'{{target: "{huge}"}}'))
    assert len(problem) < 400, problem
    assert '"' + "x" * 79 + '…" (100,000 characters)' in problem


# --- control characters in free text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "code_point", "position", "shown"),
    [
        ("Hello\\vworld", "U+000B (a control character)", 6, '"Hello\\x0bworld"'),
        ("\\e[2Jcleared", "U+001B (a control character)", 1, '"\\x1b[2Jcleared"'),
        ("nul\\0", "U+0000 (a control character)", 4, '"nul\\x00"'),
        ("del\\x7f", "U+007F (a control character)", 4, '"del\\x7f"'),
        ("c1\\x85next", "U+0085 (a control character)", 3, '"c1\\x85next"'),
        ("c1\\x9b31m", "U+009B (a control character)", 3, '"c1\\x9b31m"'),
        ("x\\uFFFE", "U+FFFE (a Unicode noncharacter)", 2, '"x\\ufffe"'),
        ("x\\uFFFF", "U+FFFF (a Unicode noncharacter)", 2, '"x\\uffff"'),
        ("x\\uFDD0", "U+FDD0 (a Unicode noncharacter)", 2, '"x\\ufdd0"'),
        ("x\\U0010FFFF", "U+10FFFF (a Unicode noncharacter)", 2, '"x\\U0010ffff"'),
    ],
)
def test_say_with_a_forbidden_character_names_it_and_where(
    escaped: str, code_point: str, position: int, shown: str
) -> None:
    problem = one_problem(with_say(escaped))
    assert problem == (
        f"{WHERE}.final.say: {shown} has {code_point} at character {position}; "
        "write plain text without control characters"
    )


def test_say_with_a_lone_surrogate_is_refused() -> None:
    # YAML's parser refuses the escape itself; a document built some other way is judged as text.
    assert "invalid YAML" in one_problem(with_say("half \\ud800 pair"))
    doc = {"numbers": {"+14155550100": {"primary": {"target": "+14155550111"}, "final": {"say": "half \ud800"}}}}
    with pytest.raises(RulesError) as err:
        parse_rules(doc)
    assert err.value.problems == [
        f'{WHERE}.final.say: "half \\ud800" has U+D800 (a lone surrogate, not a character) at character 6; '
        "write plain text without control characters"
    ]


@pytest.mark.parametrize(
    "say",
    [
        "Sorry,\\tnobody is in.\\nPlease call back.\\r",
        "Désolé, personne n'est disponible. 申し訳ありません 🙂",
        "zero\\u200bwidth and bidi \\u202e marks are text",
        "\\u2028 line separator",
    ],
)
def test_ordinary_text_and_whitespace_are_accepted(say: str) -> None:
    assert parse_rules_yaml(with_say(say))["+14155550100"].final.say


# --- URLs and hosts that cannot be encoded ---------------------------------------------------------


@pytest.mark.parametrize(
    ("health", "reason"),
    [
        ("http://a..b/", "the host has an empty label"),
        ("http://.example.com/", "the host has an empty label"),
        ("http://host.example/café", "the non-ASCII character 'é' at character 24; percent-encode it"),
        ("http://café.example/ok", "non-ASCII characters; write it in its ASCII (IDNA) form xn--caf-dma.example"),
        ("http://" + "ü" * 70 + ".example/", "cannot be encoded as an international domain name (IDNA)"),
        ("http://health check.example/", "U+0020 at character 14; a URL has no spaces"),
        ("http://x.example/\\tok", "U+0009 at character 18"),
        ("http://x.example/a\\u0085b", "U+0085 at character 19"),
        ("http://" + "a" * 64 + ".example/", "label 'aaaaaaaaaaaaaaaaaaaa…' is 64 characters long; at most 63"),
        ("http://" + ".".join(["abcdefgh"] * 30) + "/", "the host is 269 characters long; at most 253"),
        ("https://x.example/" + "p" * 1100, "it is 1,118 characters long; at most 1,024"),
        ("http://under_score.example/", "may hold only letters, digits and inner hyphens"),
        ("http://-lead.example/", "may hold only letters, digits and inner hyphens"),
        ("http://xn--zz.example/", "'xn--zz' is not a valid international (xn--) name"),
        ("http://x.example:99999/", "it is not a valid URL: Port out of range"),
        ("ftp://x.example/", "it must be an http(s) URL or a sip:/sips: URI"),
    ],
)
def test_unencodable_health_urls_are_refused_naming_the_value(health: str, reason: str) -> None:
    problem = one_problem(with_tier(f'{{target: "+14155550111", health: "{health}"}}'))
    assert problem.startswith(f"{WHERE}.primary.health: "), problem
    assert reason in problem, problem
    assert len(problem) < 400


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("sip:desk@a..b", "the host has an empty label"),
        ("sip:desk@café.example", "write it in its ASCII (IDNA) form xn--caf-dma.example"),
        ("sip:desk@" + "b" * 64 + ".example", "is 64 characters long; at most 63"),
        ("sip:desk@" + ".".join(["x" * 60] * 5), "characters long; at most 253"),
        ("sip:desk@pbx.example.com;x=" + "y" * 1100, "(1,127 characters) is too long; a target is at most 1,024"),
    ],
)
def test_unencodable_sip_hosts_are_refused_naming_the_value(target: str, reason: str) -> None:
    problem = one_problem(with_tier(f'{{target: "{target}"}}'))
    assert problem.startswith(f"{WHERE}.primary.target: "), problem
    assert reason in problem, problem
    assert problem.startswith(f'{WHERE}.primary.target: "{target[:60]}'), problem


def test_encodable_hosts_are_accepted() -> None:
    text = with_tier('{target: "sip:desk@xn--caf-dma.example.", health: "https://XN--CAF-DMA.example/h%C3%A9?a=1"}')
    assert parse_rules_yaml(text)["+14155550100"].primary.health == "https://XN--CAF-DMA.example/h%C3%A9?a=1"


# --- addresses the checker must not probe ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "spelling"),
    [
        ("http://2130706433/health", "health", "'2130706433'"),
        ("http://0x7f.1/health", "health", "'0x7f.1'"),
        ("http://127.1:8080/", "health", "'127.1'"),
        ("http://0177.0.0.1/", "health", "'0177.0.0.1'"),
        ("sip:desk@2130706433", "target", "'2130706433'"),
        ("sip:desk@0x7f.0.0.1:5060", "target", "'0x7f.0.0.1'"),
    ],
)
def test_unusual_spellings_of_addresses_are_refused_even_where_private_is_allowed(
    value: str, field: str, spelling: str
) -> None:
    tier = f'{{target: "{value}"}}' if field == "target" else f'{{target: "+14155550111", health: "{value}"}}'
    for allow_private in (False, True):
        problem = one_problem(with_tier(tier), allow_private=allow_private)
        assert problem == (
            f'{WHERE}.primary.{field}: "{value}": {spelling} is an unusual spelling of an address: write the '
            "address as 127.0.0.1; it is a loopback address (the checker's own machine)"
        )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address (cloud metadata"),
        ("http://169.254.170.2/v2/credentials", "169.254.170.2 is a link-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://[::]/", ":: is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("sip:desk@169.254.169.254", "169.254.169.254 is a link-local address"),
        ("sip:desk@[ff02::1]", "ff02::1 is a multicast address"),
    ],
)
def test_metadata_link_local_unspecified_and_multicast_are_always_refused(value: str, reason: str) -> None:
    tier = f'{{target: "{value}"}}' if value.startswith("sip") else f'{{target: "+14155550111", health: "{value}"}}'
    for allow_private in (False, True):
        problem = one_problem(with_tier(tier), allow_private=allow_private)
        assert reason in problem and problem.endswith("; it is never probed"), problem
        assert f'"{value}"' in problem


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:8080/ok", "http://10.0.0.5/ok", "sip:desk@192.168.1.20", "sip:desk@[::1]:5070"]
)
def test_loopback_and_private_are_refused_unless_allowed(value: str) -> None:
    tier = f'{{target: "{value}"}}' if value.startswith("sip") else f'{{target: "+14155550111", health: "{value}"}}'
    problem = one_problem(with_tier(tier))
    assert f'"{value}"' in problem and "it is probed only where ALLOW_PRIVATE_TARGETS=true" in problem
    assert parse_rules_yaml(with_tier(tier), allow_private=True)


def test_names_are_not_resolved_at_validation() -> None:
    # "localhost" resolves to loopback, but only the prober, at probe time, may judge what a name resolves to.
    assert parse_rules_yaml(with_tier('{target: "sip:desk@localhost", health: "http://localhost/"}'))


def test_validate_warns_about_private_addresses_it_accepted() -> None:
    rules = parse_rules_yaml(
        with_tier('{target: "sip:desk@10.1.2.3", health: "http://127.0.0.1:8080/ok"}'), allow_private=True
    )
    assert rule_warnings(rules, private_allowed=True) == []
    assert rule_warnings(rules, private_allowed=False) == [
        f'{WHERE}.primary.target: "sip:desk@10.1.2.3": 10.1.2.3 is a private or reserved address; '
        "it will be refused in AWS unless ALLOW_PRIVATE_TARGETS is set",
        f'{WHERE}.primary.health: "http://127.0.0.1:8080/ok": 127.0.0.1 is a loopback address '
        "(the checker's own machine); it will be refused in AWS unless ALLOW_PRIVATE_TARGETS is set",
    ]


# --- ring time -----------------------------------------------------------------------------------------


def cascade(*timeouts: int) -> str:
    primary, *failover = timeouts
    tiers = ", ".join(f'{{target: "+1212555{i:04d}", timeout: {t}}}' for i, t in enumerate(failover))
    return f'numbers:\n  {NUMBER}: {{primary: {{target: "+14155550111", timeout: {primary}}}, failover: [{tiers}]}}\n'


def test_a_cascade_ringing_past_300_seconds_is_refused_naming_the_total_and_its_parts() -> None:
    problem = one_problem(cascade(60, 60, 60, 60, 60))
    assert problem == (
        f"{WHERE}: the cascade can ring unanswered for 325 s (60+5 + 60+5 + 60+5 + 60+5 + 60+5 s: each tier's "
        "timeout plus about 5 s that Twilio adds); at most 300 s is allowed (callers' networks typically give "
        "up after 90-180 s): shorten the timeouts or drop tiers"
    )


def test_a_single_long_tier_counts_too() -> None:
    assert "ring unanswered for 305 s (300+5 s" in one_problem(cascade(300))
    assert parse_rules_yaml(cascade(295))


def test_a_cascade_of_exactly_300_seconds_is_accepted_with_a_warning() -> None:
    rules = parse_rules_yaml(cascade(55, 55, 55, 55, 55))
    (warning,) = rule_warnings(rules, private_allowed=True)
    assert warning.startswith(f"{WHERE}: the cascade can ring unanswered for 300 s (55+5 + 55+5")
    assert "more than 120 s; callers' networks typically give up after 90-180 s" in warning


def test_up_to_120_seconds_gets_no_warning() -> None:
    assert rule_warnings(parse_rules_yaml(cascade(35, 35, 35)), private_allowed=True) == []  # 120 s
    assert len(rule_warnings(parse_rules_yaml(cascade(35, 35, 36)), private_allowed=True)) == 1  # 121 s


def test_ring_time_is_judged_with_other_problems_at_once() -> None:
    text = cascade(200, 200).replace('"+14155550111"', '"+1911"')
    problems = problems_of(text)
    assert any("emergency" in p for p in problems) and any("410 s" in p for p in problems), problems


# --- anything at all -------------------------------------------------------------------------------

_YAML_BITS = st.sampled_from(
    [
        "numbers:",
        "\n",
        "  ",
        '"+14155550100":',
        "{",
        "}",
        "[",
        "]",
        ",",
        ": ",
        "- ",
        "&a ",
        "*a",
        "!!binary ",
        "primary:",
        "target:",
        '"sip:9911@h"',
        "timeout: 999",
        "say:",
        '"\\x1b"',
        "\t",
        "#",
        "'",
        '"',
        "? ",
        "|",
        ">",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(_YAML_BITS, max_size=60).map("".join)))
def test_any_text_is_judged_with_one_line_problems(text: str) -> None:
    try:
        parse_rules_yaml(text, source="any.yaml")
    except RulesError as error:
        assert error.problems
        for line in error.lines():
            assert line.startswith("any.yaml: ") and "\n" not in line and len(line) < 1000, line
            assert line.isprintable(), line
