"""The console's rule form, pure: rule -> fields -> rule round trips, tier buttons, bounds on what is
posted, and each validator problem placed at the field it concerns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover_did.rules.validate import parse_rules_yaml
from failover_did_console import forms
from failover_did_console.forms import GENERAL, FormRefused, RuleForm, TierFields

RULES = parse_rules_yaml(
    """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15, health: "https://pbx.example.com/health"}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sips:oncall@dr.example.net", screen: true, tls_verify: false}
      - {target: "sip:late@dr.example.net", probe: false}
    triggers: [timeout, busy, "503", "6xx"]
    final: {say: "Nobody is here.", voicemail: true, transcribe: true}
    monthly_failover_budget: 40
    notify: {email: [ops@example.com, boss@example.com], sms: ["+14155550123"]}
  "+14155550200":
    primary: {target: "+14155550222"}
"""
)
NUMBER = "+14155550100"


def fields_of(form: RuleForm) -> dict[str, str]:
    """What a browser posts for the form (checked boxes only)."""
    out = {"number": form.number, "version": form.version, "sip_triggers": form.sip_triggers}
    out |= {"final_say": form.final_say, "monthly_failover_budget": form.monthly_failover_budget}
    out |= {"notify_email": form.notify_email, "notify_sms": form.notify_sms}
    out |= {f"trigger_{t}": "1" for t in form.triggers}
    out |= {name: "1" for name in ("final_voicemail", "final_transcribe") if getattr(form, name)}
    rows = [("primary_", "", form.primary)] + [("tier_", f"_{i}", t) for i, t in enumerate(form.tiers, 1)]
    for prefix, suffix, tier in rows:
        for key in ("target", "timeout", "health"):
            out[f"{prefix}{key}{suffix}"] = getattr(tier, key)
        for key in ("screen", "no_probe", "no_tls_verify"):
            if getattr(tier, key):
                out[f"{prefix}{key}{suffix}"] = "1"
    return out


@pytest.mark.parametrize("number", sorted(RULES))
def test_a_rule_comes_back_unchanged_through_the_form(number: str) -> None:
    rule = RULES[number]
    form = forms.from_fields(fields_of(forms.from_rule(rule, 7)))
    assert form.version == "7"
    judged = forms.judge(form, number)
    assert judged.errors == {}
    assert judged.rule == rule


def test_blank_tier_rows_are_left_out_and_errors_keep_the_forms_numbering() -> None:
    form = forms.from_rule(RULES[NUMBER], 1)
    tiers = (TierFields(), form.tiers[0], TierFields(), TierFields(target="+1999"))
    judged = forms.judge(RuleForm(**{**form.__dict__, "tiers": tiers}), NUMBER)
    assert judged.rule is None
    assert list(judged.errors) == ["tier_target_4"]


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"primary_timeout": "3"}, "primary_timeout", "from 5 to 600"),
        ({"primary_timeout": "ten"}, "primary_timeout", '"ten" must be a whole number'),
        ({"primary_target": ""}, "primary_target", "empty"),
        ({"primary_health": "ftp://x.example.com"}, "primary_health", "ftp"),
        ({"tier_timeout_2": "601"}, "tier_timeout_2", "from 5 to 600"),
        ({"tier_target_1": "+1415555"}, "tier_target_1", "+1415555"),
        ({"tier_target_1": "+14155550200"}, "tier_target_1", "loop"),
        ({"tier_health_3": "https://x.example.com/h"}, "tier_no_probe_3", "contradicts"),
        ({"sip_triggers": "999"}, "triggers", "not a trigger"),
        ({"final_say": "  "}, "final_say", "non-empty"),
        ({"final_say": "bell \x07"}, "final_say", "U+0007"),
        ({"final_voicemail": ""}, "final_transcribe", "needs voicemail"),
        ({"monthly_failover_budget": "0"}, "monthly_failover_budget", "1 or more"),
        ({"notify_email": "not-an-address"}, "notify_email", "not-an-address"),
        ({"notify_sms": "12345"}, "notify_sms", "12345"),
    ],
)
def test_each_problem_sits_at_its_field(change: dict[str, str], field: str, words: str) -> None:
    posted = fields_of(forms.from_rule(RULES[NUMBER], 1))
    posted.update(change)
    posted = {k: v for k, v in posted.items() if v != "" or k not in ("final_voicemail",)}
    judged = forms.judge(forms.from_fields(posted), NUMBER, known_numbers=RULES)
    assert judged.rule is None
    assert field in judged.errors, judged.errors
    assert any(words in m for m in judged.errors[field]), judged.errors
    assert all(not m.startswith("numbers.") for ms in judged.errors.values() for m in ms)


def test_no_trigger_at_all_is_a_triggers_problem() -> None:
    posted = {k: v for k, v in fields_of(forms.from_rule(RULES[NUMBER], 1)).items() if not k.startswith("trigger_")}
    posted["sip_triggers"] = ""
    judged = forms.judge(forms.from_fields(posted), NUMBER)
    assert "triggers" in judged.errors


def test_a_cascade_ringing_too_long_concerns_the_whole_rule() -> None:
    posted = fields_of(forms.from_rule(RULES[NUMBER], 1))
    posted |= {"primary_timeout": "200", "tier_timeout_1": "200"}
    judged = forms.judge(forms.from_fields(posted), NUMBER)
    assert judged.general and "300 s" in judged.general[0]


def test_a_bad_new_number_is_said_once_at_its_field() -> None:
    form = forms.from_fields(fields_of(forms.from_rule(RULES["+14155550200"], None)))
    judged = forms.judge(form, "4155")
    assert list(judged.errors) == ["number"] and len(judged.errors["number"]) == 1


def test_tier_buttons() -> None:
    form = forms.from_rule(RULES[NUMBER], 1)
    targets = [t.target for t in form.tiers]
    assert [t.target for t in forms.rearranged(form, "add_tier").tiers] == [*targets, ""]
    assert [t.target for t in forms.rearranged(form, "remove_tier_2").tiers] == [targets[0], targets[2]]
    assert [t.target for t in forms.rearranged(form, "up_tier_2").tiers] == [targets[1], targets[0], targets[2]]
    assert [t.target for t in forms.rearranged(form, "down_tier_2").tiers] == [targets[0], targets[2], targets[1]]
    assert forms.rearranged(form, "up_tier_1") == form
    assert forms.rearranged(form, "down_tier_3") == form
    assert forms.rearranged(form, "remove_tier_9") == form
    moved = forms.rearranged(form, "up_tier_2").tiers[0]
    assert moved.screen and moved.no_tls_verify  # a tier moves with all its settings


@pytest.mark.parametrize("action", ["delete", "save_all", "remove_tier_", "up_tier_x", "add_tier;drop"])
def test_unknown_actions_are_refused(action: str) -> None:
    with pytest.raises(FormRefused):
        forms.action_of(action)
    assert forms.action_of(None) == "save" and forms.action_of("remove_tier_3") == "remove_tier_3"


@pytest.mark.parametrize(
    "posted",
    [
        {f"f{i}": "" for i in range(forms.MAX_FIELDS + 1)},
        {"final_say": "x" * (forms.MAX_FIELD_CHARS + 1)},
        {"tier_target_0": "+14155550111"},
        {f"tier_target_{forms.MAX_TIER_INDEX + 1}": "+14155550111"},
    ],
)
def test_what_no_form_of_ours_would_post_is_refused(posted: dict[str, str]) -> None:
    with pytest.raises(FormRefused):
        forms.from_fields(posted)


def test_notify_left_blank_means_the_default_recipients() -> None:
    posted = fields_of(forms.from_rule(RULES[NUMBER], 1)) | {"notify_email": " \n ", "notify_sms": ""}
    rule = forms.judge(forms.from_fields(posted), NUMBER).rule
    assert rule is not None and rule.notify is None


def test_recipients_may_be_separated_by_commas_or_lines() -> None:
    posted = fields_of(forms.from_rule(RULES[NUMBER], 1)) | {"notify_email": "a@example.com,\r\nb@example.com"}
    rule = forms.judge(forms.from_fields(posted), NUMBER).rule
    assert rule is not None and rule.notify is not None and rule.notify.email == ("a@example.com", "b@example.com")


NAMES = st.sampled_from(
    [
        "primary_target",
        "primary_timeout",
        "tier_target_1",
        "tier_timeout_2",
        "tier_screen_1",
        "sip_triggers",
        "final_say",
        "final_voicemail",
        "final_transcribe",
        "monthly_failover_budget",
        "notify_email",
        "notify_sms",
        "trigger_busy",
        "primary_health",
        "tier_no_probe_1",
        "tier_health_2",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(NAMES, st.text(max_size=12)), st.text(max_size=60), max_size=20))
def test_any_posted_fields_are_judged_or_refused_never_an_error(posted: dict[str, str]) -> None:
    try:
        form = forms.from_fields(posted)
    except FormRefused:
        return
    judged = forms.judge(form, NUMBER)
    assert (judged.rule is None) == bool(judged.errors)
    for name in judged.errors:
        assert (
            name == GENERAL
            or name
            in {
                "number",
                "failover",
                "triggers",
                "final_say",
                "final_voicemail",
                "final_transcribe",
                "monthly_failover_budget",
                "notify_email",
                "notify_sms",
            }
            or name.startswith(("primary_", "tier_"))
        ), name
