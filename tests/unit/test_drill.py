"""The drill's pure parts: its CallSids, reading a Dial action's tier, the event check and the verdict."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from failover_did.drill.checks import (
    EVENT_LOGGED,
    Check,
    drill_sid,
    event_check,
    tier_of,
    verdict,
)
from failover_did.drill.simulator import marked_as_test
from failover_did.store.events import Event

SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def failover(sid: str, kind: str = "failover") -> Event:
    detail = {"call_sid": sid, "from_tier": 0, "to_tier": 1, "to_target": "+14155550111", "reason": "503"}
    return Event("+14155550100", "2026-01-01T00:00:01.000Z", kind, detail)


def test_drill_sids_have_twilios_form() -> None:
    sids = {drill_sid() for _ in range(50)}
    assert len(sids) == 50
    for sid in sids:
        assert re.fullmatch(r"CA[0-9a-f]{32}", sid)


def test_drill_and_simulate_calls_carry_the_test_marker() -> None:
    assert marked_as_test("http://127.0.0.1:3000/voice") == "http://127.0.0.1:3000/voice?test=1"
    assert marked_as_test("https://h.example/prod/voice?x=1") == "https://h.example/prod/voice?x=1&test=1"
    assert marked_as_test("https://h.example/voice?test=1") == "https://h.example/voice?test=1"


def test_event_check_says_the_failover_was_marked_as_a_test() -> None:
    event = failover("CA1")
    marked = Event(event.number, event.at, event.kind, {**event.detail, "test": True})
    check = event_check("+14155550100", ["CA1"], SINCE, lambda n, s: [marked], wait=0)
    assert check.passed and check.detail.endswith("for CA1, marked as a test call")


def test_tier_of_reads_the_action_query() -> None:
    assert tier_of("https://x.example.com/voice/action?tier=2&hop=3") == 2
    assert tier_of("https://x.example.com/voice/action?hop=3") is None
    assert tier_of("") is None


def test_event_check_finds_the_drill_calls_failover() -> None:
    calls: list[tuple[str, datetime]] = []

    def find(number: str, since: datetime) -> list[Event]:
        calls.append((number, since))
        return [failover("CAother"), failover("CAdrill1", kind="unreachable"), failover("CAdrill1")]

    check = event_check("+14155550100", ["CAdrill1", "CAdrill2"], SINCE, find, wait=0)
    assert check.passed and check.name == EVENT_LOGGED
    assert "tier 0 -> 1 +14155550111 (503)" in check.detail and "CAdrill1" in check.detail
    assert calls == [("+14155550100", SINCE)]


def test_event_check_fails_when_nothing_is_logged_or_nothing_failed_over() -> None:
    missing = event_check("+14155550100", ["CAdrill1"], SINCE, lambda n, s: [failover("CAdrill2")], wait=0)
    assert not missing.passed and "no failover event for CAdrill1" in missing.detail
    nothing = event_check("+14155550100", [], SINCE, lambda n, s: [], wait=0)
    assert not nothing.passed and "no drill call failed over" in nothing.detail


def test_event_check_reports_an_unreadable_log() -> None:
    def broken(number: str, since: datetime) -> list[Event]:
        raise RuntimeError("table not found")

    check = event_check("+14155550100", ["CAdrill1"], SINCE, broken, wait=0)
    assert not check.passed and check.detail == "cannot read the event log: table not found"


def test_verdict() -> None:
    good = [Check("a", True, ""), Check("b", True, "")]
    assert verdict("+14155550100", good).startswith("PASS: +14155550100 fails over")
    bad = [Check("a", True, ""), Check("b", False, "why")]
    assert verdict("+14155550100", bad) == "FAIL: 1 of 2 checks failed for +14155550100: b"
