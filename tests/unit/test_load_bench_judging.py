"""How benchmarks/load_local.py judges the call log after a load: a call is logged whole only when every
dial it made is stored with the outcome Twilio reported for it."""

from __future__ import annotations

from benchmarks.load_local import ANSWERED, CallResult, Leg, unlogged

BUSY = Leg("busy", "fails over")
NO_ANSWER = Leg("no-answer", "fails over")


def call(sid: str, *legs: Leg) -> CallResult:
    return CallResult("+14155550100", list(legs), [], sid)


def test_a_call_with_every_dial_logged_is_whole() -> None:
    logged = {"CA1": {"1": "busy", "2": "no-answer", "3": ""}}  # the third tier rings on: not yet an outcome
    assert unlogged([call("CA1", BUSY, NO_ANSWER)], logged) == []


def test_a_missing_dial_a_wrong_outcome_or_a_missing_call_is_named() -> None:
    logged = {"CA1": {"1": "busy"}, "CA2": {"1": "busy", "2": "busy"}}
    calls = [call("CA1", BUSY, ANSWERED), call("CA2", BUSY, NO_ANSWER), call("CA3", BUSY)]
    assert [line.split()[0] for line in unlogged(calls, logged)] == ["CA1", "CA2", "CA3"]
