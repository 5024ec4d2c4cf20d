"""The routing core over every trigger and outcome, with plain values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover_did.routing import (
    MAX_HOPS,
    DialOutcome,
    DialTier,
    Finish,
    Stop,
    answered,
    first_step,
    matched_trigger,
    next_step,
)
from failover_did.rules.model import DEFAULT_TRIGGERS, Final, Rule, Tier

PBX = Tier("sip:frontdesk@pbx.example.com", timeout=15)
MOBILE = Tier("+14155550111", timeout=20)
DR = Tier("sip:oncall@dr.example.net", screen=True)
RULE = Rule("+14155550100", (PBX, MOBILE, DR), frozenset({"timeout", "busy", "failed", "503"}))


def outcome(status: str, code: int | None = None, **kw: object) -> DialOutcome:
    return DialOutcome(status=status, sip_code=code, **kw)  # type: ignore[arg-type]


def test_first_step_dials_the_primary() -> None:
    step = first_step(RULE)
    assert (step.index, step.tier, step.hop, step.reason) == (0, PBX, 1, "primary")


@pytest.mark.parametrize(
    ("dial", "expected_trigger"),
    [
        (outcome("no-answer"), "timeout"),
        (outcome("busy"), "busy"),
        (outcome("failed"), "failed"),
        (outcome("failed", 503), "503"),
        (outcome("busy", 486), "busy"),  # 486 is not listed, the status is
        (outcome("failed", 404), "failed"),
    ],
)
def test_each_trigger_moves_to_the_next_tier(dial: DialOutcome, expected_trigger: str) -> None:
    step = next_step(RULE, 0, 1, dial)
    assert isinstance(step, DialTier)
    assert (step.index, step.tier, step.hop, step.reason) == (1, MOBILE, 2, expected_trigger)


def test_cascade_walks_every_tier_then_final() -> None:
    first = next_step(RULE, 0, 1, outcome("busy"))
    second = next_step(RULE, 1, 2, outcome("no-answer"))
    last = next_step(RULE, 2, 3, outcome("failed", 503))
    assert isinstance(first, DialTier) and first.tier == MOBILE
    assert isinstance(second, DialTier) and second.tier == DR and second.reason == "timeout"
    assert isinstance(last, Finish) and last.final == RULE.final and "last tier" in last.reason


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_answered_stops(status: str) -> None:
    assert next_step(RULE, 0, 1, outcome(status)) == Stop("answered")


def test_caller_hang_up_stops_whatever_the_rule() -> None:
    assert next_step(RULE, 0, 1, outcome("canceled")) == Stop("caller hung up")
    assert next_step(RULE, 0, 1, outcome("no-answer", caller_gone=True)) == Stop("caller hung up")


def test_outcome_not_in_triggers_goes_to_final() -> None:
    no_timeouts = Rule("+14155550200", (PBX, MOBILE), frozenset({"busy", "failed", "5xx"}))
    step = next_step(no_timeouts, 0, 1, outcome("no-answer"))
    assert isinstance(step, Finish) and "no-answer" in step.reason


def test_sip_code_is_matched_before_the_status() -> None:
    only_503 = frozenset({"503"})
    assert matched_trigger(only_503, outcome("failed", 503)) == "503"
    assert matched_trigger(only_503, outcome("failed", 500)) is None
    assert matched_trigger(frozenset({"5xx", "failed"}), outcome("failed", 502)) == "5xx"
    assert matched_trigger(frozenset({"486"}), outcome("busy", 486)) == "486"
    assert matched_trigger(frozenset({"4xx"}), outcome("busy", 486)) == "4xx"
    assert matched_trigger(frozenset({"busy"}), outcome("busy", 486)) == "busy"


def test_unknown_status_counts_as_failed() -> None:
    assert matched_trigger(frozenset(DEFAULT_TRIGGERS), outcome("weird")) == "failed"
    assert matched_trigger(frozenset({"busy"}), outcome("")) is None


def test_screened_tier_needs_acceptance() -> None:
    rule = Rule("+14155550100", (DR, MOBILE))
    voicemail_like = outcome("completed", bridged=False)
    assert next_step(rule, 0, 1, voicemail_like) == DialTier(1, MOBILE, "timeout", 2)
    assert next_step(rule, 0, 1, outcome("completed", bridged=True)) == Stop("answered")
    assert next_step(rule, 0, 1, outcome("completed", screen_accepted=True)) == Stop("answered")
    assert isinstance(next_step(rule, 0, 1, outcome("completed")), DialTier)


def test_hop_cap_ends_the_cascade_even_if_tiers_remain() -> None:
    rule = Rule("+14155550100", tuple(Tier(f"+1415555{100 + i:04d}") for i in range(12)))
    assert isinstance(next_step(rule, 3, MAX_HOPS - 1, outcome("busy")), DialTier)
    step = next_step(rule, 3, MAX_HOPS, outcome("busy"))
    assert isinstance(step, Finish) and str(MAX_HOPS) in step.reason


def test_tier_index_past_an_edited_rule_goes_to_final() -> None:
    step = next_step(RULE, 7, 2, outcome("busy"))
    assert isinstance(step, Finish)


def test_down_tiers_are_skipped_and_all_down_dials_in_order() -> None:
    health = {PBX.target: "down"}
    assert first_step(RULE, health).tier == MOBILE
    assert "skipped down" in first_step(RULE, health).reason
    all_down = {PBX.target: "down", MOBILE.target: "down", DR.target: "down"}
    assert first_step(RULE, all_down).tier == PBX
    assert next_step(RULE, 0, 1, outcome("busy"), all_down) == DialTier(1, MOBILE, "busy", 2)
    assert next_step(RULE, 0, 1, outcome("busy"), {MOBILE.target: "down"}) == DialTier(2, DR, "busy", 2)
    assert first_step(RULE, {PBX.target: "degraded"}).tier == PBX


@pytest.mark.parametrize("state", ["unverified", "unknown", "up", "degraded", "not probed", ""])
def test_only_a_destination_judged_down_is_skipped(state: str) -> None:
    """Unverified (the prober never reached it), a state routing does not know, or none at all: dialed."""
    health = {PBX.target: state, DR.target: state}
    assert first_step(RULE, health).tier == PBX
    assert next_step(RULE, 1, 2, outcome("busy"), health) == DialTier(2, DR, "busy", 3)
    probe_off = Rule("+14155550100", (Tier(PBX.target, probe=False), MOBILE))
    assert first_step(probe_off, {PBX.target: "down"}).tier == MOBILE  # live failures still count


def test_answered_counts_a_screened_leg_only_when_accepted() -> None:
    assert answered(PBX, outcome("completed")) and answered(PBX, outcome("answered"))
    assert not answered(DR, outcome("completed")) and answered(DR, outcome("completed", bridged=True))
    assert not answered(PBX, outcome("busy")) and not answered(PBX, outcome("failed", 503))


def test_health_target_overrides_the_tier_target() -> None:
    tier = Tier("+14155550111", health="https://status.example.com/ok")
    rule = Rule("+14155550100", (tier, PBX))
    assert first_step(rule, {"https://status.example.com/ok": "down"}).tier == PBX
    assert first_step(rule, {"+14155550111": "down"}).tier == tier


def test_outcome_from_twilio_params() -> None:
    parsed = DialOutcome.from_params(
        {
            "DialCallStatus": "Failed",
            "DialSipResponseCode": "503",
            "DialBridged": "false",
            "CallStatus": "in-progress",
        }
    )
    assert parsed == DialOutcome("failed", 503, False, False, False)
    assert DialOutcome.from_params({"DialSipResponseCode": "5o3"}).sip_code is None
    assert DialOutcome.from_params({"CallStatus": "completed"}).caller_gone


STATUSES = st.sampled_from(["completed", "answered", "busy", "no-answer", "failed", "canceled", "", "junk"])
CODES = st.one_of(st.none(), st.integers(100, 699))
TRIGGERS = st.frozensets(st.sampled_from(["timeout", "busy", "failed", "486", "503", "4xx", "5xx", "6xx"]), min_size=1)


@given(STATUSES, CODES, TRIGGERS, st.integers(0, 4), st.integers(1, 20), st.booleans())
def test_next_step_never_dials_outside_the_rule(
    status: str, code: int | None, triggers: frozenset[str], index: int, hop: int, gone: bool
) -> None:
    rule = Rule("+14155550100", (PBX, MOBILE, DR), triggers, Final("bye"))
    step = next_step(rule, index, hop, DialOutcome(status, code, caller_gone=gone))
    if isinstance(step, DialTier):
        assert step.index > index and step.tier in rule.tiers and step.hop == hop + 1 <= MAX_HOPS
        assert not gone and status not in ("canceled", "completed", "answered")
    if gone or status == "canceled":
        assert step == Stop("caller hung up")


@pytest.mark.parametrize(
    ("reason", "metric_value"),
    [
        ("timeout", "timeout"),
        ("busy", "busy"),
        ("failed", "failed"),
        ("down", "down"),
        ("503", "sip-5xx"),
        ("5xx", "sip-5xx"),
        ("486", "sip-4xx"),
        ("6xx", "sip-6xx"),
        ("weird", "failed"),
    ],
)
def test_failover_reasons_map_to_few_metric_values(reason: str, metric_value: str) -> None:
    from failover_did.routing import reason_class

    assert reason_class(reason) == metric_value


def test_dial_outcomes_map_to_few_metric_values() -> None:
    from failover_did.routing import outcome_class

    assert outcome_class(PBX, outcome("completed")) == "answered"
    assert outcome_class(DR, outcome("completed", bridged=False)) == "other"  # screened, never accepted
    assert outcome_class(PBX, outcome("no-answer", caller_gone=True)) == "canceled"
    assert [outcome_class(PBX, outcome(s)) for s in ("busy", "no-answer", "failed", "canceled", "x")] == [
        "busy",
        "no-answer",
        "failed",
        "canceled",
        "other",
    ]
