"""Health checks under moto: the checker's runs, hysteresis in DynamoDB, events, passive checks from live
calls, and the webhook skipping a destination that is down."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from failover_did.health import checker
from failover_did.health.hysteresis import Thresholds
from failover_did.health.probe import ProbeResult, State
from failover_did.rules.model import Rule
from failover_did.store import events, health_store
from failover_did_cli.callsim import parse_reply
from tests.support import Webhook, call_params

PBX = "sip:frontdesk@pbx.example.com"
DR = "sip:oncall@dr.example.net"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def fake_prober(states: dict[str, tuple[State, str]]) -> checker.Prober:
    async def probe(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, *states.get(t, (State.UP, "200")), rtt_ms=1.0) for t in targets}

    return probe


def check(rules: dict[str, Rule], states: dict[str, tuple[State, str]], minute: int) -> checker.Report:
    return checker.run_checks(
        rules.values(), prober=fake_prober(states), timeout=0.1, now=lambda: T0 + timedelta(minutes=minute)
    )


def test_plan_probes_sip_targets_and_health_urls_not_bare_numbers(rules: dict[str, Rule]) -> None:
    plan = checker.probe_plan(rules.values())
    assert set(plan) == {PBX, DR, "sip:sales@pbx.example.com"}
    assert [(u.number, u.tier_name) for u in plan[DR]] == [("+14155550100", "failover tier 2")]


def test_dead_primary_goes_down_after_two_checks_and_is_logged_once(rules: dict[str, Rule]) -> None:
    dead = {PBX: (State.DOWN, "503")}
    first = check(rules, dead, 0)
    assert first.down == [PBX] and first.transitions == []
    second = check(rules, dead, 1)
    assert [(t.target, t.kind, t.reason) for t in second.transitions] == [(PBX, "unreachable", "503")]
    assert check(rules, dead, 2).transitions == []  # repeated results are not news
    logged = list(events.events_of("+14155550100"))
    assert [(e.kind, e.detail["tier_name"], e.detail["reason"]) for e in logged] == [("unreachable", "primary", "503")]
    assert logged[0].at.startswith("2026-11-28T10:01")
    back = [check(rules, {}, 3), check(rules, {}, 4)]
    assert [t.kind for r in back for t in r.transitions] == ["recovered"]
    assert [e.kind for e in events.events_of("+14155550100")] == ["unreachable", "recovered"]
    assert health_store.last_run() == "2026-11-28T10:04:00Z"


def test_webhook_skips_a_down_primary_and_dials_it_again_once_up(rules: dict[str, Rule], webhook: Webhook) -> None:
    from failover_did.webhook import app

    dead = {PBX: (State.DOWN, "refused")}
    check(rules, dead, 0)
    check(rules, dead, 1)
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == ("+14155550111",)
    check(rules, {}, 2)
    check(rules, {}, 3)
    app.health.clear()
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == (PBX,)


def test_every_tier_down_still_dials_in_order(rules: dict[str, Rule], webhook: Webhook) -> None:
    all_dead = {PBX: (State.DOWN, "timeout"), DR: (State.DOWN, "timeout")}
    check(rules, all_dead, 0)
    check(rules, all_dead, 1)
    # the phone-number tier is not probed, so it is dialed first; with it gone too, the primary is
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == ("+14155550111",)
    after = parse_reply(*_sb(webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=1&hop=2")))
    assert after.dial is not None and after.dial.targets == (DR,)


def test_live_call_failures_count_as_failed_probes_once_per_call(rules: dict[str, Rule], webhook: Webhook) -> None:
    failed = call_params(sid="CA" + "a" * 32, DialCallStatus="failed", DialSipResponseCode="503")
    webhook.post("/voice/action", failed, "tier=0&hop=1")
    webhook.post("/voice/action", failed, "tier=0&hop=1")  # Twilio retried the same callback
    (state,) = [h for h in health_store.all_health() if h.target == PBX]
    assert state.failures == 1 and state.state == "unknown"
    busy = call_params(sid="CA" + "b" * 32, DialCallStatus="busy", DialSipResponseCode="486")
    webhook.post("/voice/action", busy, "tier=0&hop=1")  # busy: the PBX is alive
    assert [h.failures for h in health_store.all_health() if h.target == PBX] == [1]
    another = call_params(sid="CA" + "c" * 32, DialCallStatus="failed")
    webhook.post("/voice/action", another, "tier=0&hop=1")
    (state,) = [h for h in health_store.all_health() if h.target == PBX]
    assert state.state == "down" and state.reason == "failed"
    logged = [e.kind for e in events.events_of("+14155550100")]
    assert logged.count("unreachable") == 1
    assert logged.count("failover") == 3  # three calls moved to tier 1; the retried callback is not repeated


def test_overlapping_writers_never_lose_a_count(rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another checker run (or a live call) writes between our read and our write: ours is refused by
    the version condition, re-read and folded again, so both failures count. (Interleaved by hand:
    moto's conditional writes are not atomic across threads, DynamoDB's are.)"""
    from failover_did.store.tables import HealthItem

    real_save = HealthItem.save
    interleaved = 0

    def save_after_another_writer(self: HealthItem, *args: Any, **kwargs: Any) -> Any:
        nonlocal interleaved
        if interleaved < 2:
            interleaved += 1
            monkeypatch.setattr(HealthItem, "save", real_save)
            health_store.record_check(PBX, "down", "timeout", T0, Thresholds(down_after=100))
            monkeypatch.setattr(HealthItem, "save", save_after_another_writer)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(HealthItem, "save", save_after_another_writer)
    health_store.record_check(PBX, "down", "503", T0, Thresholds(down_after=100))
    monkeypatch.setattr(HealthItem, "save", real_save)
    (state,) = [h for h in health_store.all_health() if h.target == PBX]
    assert interleaved == 2 and state.failures == 3  # ours, after two writes that landed in between


def test_checker_handler_reads_the_rules_and_reports(rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch) -> None:
    async def all_refused(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, State.DOWN, "refused", None) for t in targets}

    monkeypatch.setattr(checker, "_probe", all_refused)
    from failover_did_cli.apigw import LambdaContext

    result = checker.handler({}, LambdaContext())
    assert sorted(result["down"]) == sorted([PBX, DR, "sip:sales@pbx.example.com"]) and result["errors"] == []


def _sb(result: Any) -> tuple[int, str]:
    return result.status, result.body
