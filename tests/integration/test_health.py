"""Health checks under moto: the checker's runs, the evidence model in DynamoDB (unverified targets, live
evidence both ways, `probe: false`), events, errors that stay with one target, and the webhook skipping a
destination that is down."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from failover_did.health import checker
from failover_did.health.hysteresis import Thresholds, judge
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
    assert check(rules, {}, 0).transitions == []  # reached: nothing to tell
    dead = {PBX: (State.DOWN, "503")}
    first = check(rules, dead, 1)
    assert first.down == [] and first.transitions == []
    second = check(rules, dead, 2)
    assert second.down == [PBX]
    assert [(t.target, t.kind, t.reason) for t in second.transitions] == [(PBX, "unreachable", "503")]
    assert check(rules, dead, 3).transitions == []  # repeated results are not news
    logged = list(events.events_of("+14155550100"))
    assert [(e.kind, e.detail["tier_name"], e.detail["reason"]) for e in logged] == [("unreachable", "primary", "503")]
    assert logged[0].at.startswith("2026-11-28T10:02")
    back = [check(rules, {}, 4), check(rules, {}, 5)]
    assert [t.kind for r in back for t in r.transitions] == ["recovered"]
    assert [e.kind for e in events.events_of("+14155550100")] == ["unreachable", "recovered"]
    assert health_store.last_run() == "2026-11-28T10:05:00Z"


def test_a_target_the_prober_never_reached_is_unverified_dialed_and_told_once(
    rules: dict[str, Rule], webhook: Webhook
) -> None:
    from failover_did.observability import metrics

    metrics.clear_metrics()
    firewalled = {PBX: (State.DOWN, "timeout")}
    runs = [check(rules, firewalled, i) for i in range(4)]
    assert all(r.down == [] for r in runs) and runs[0].unverified == [PBX]
    assert [(t.target, t.kind) for r in runs for t in r.transitions] == [(PBX, "unverified")]
    logged = [e for e in events.events_of("+14155550100") if e.detail.get("target") == PBX]
    assert [(e.kind, e.detail["reason"]) for e in logged] == [("unverified", "timeout")]
    assert metrics.metric_set["DestinationUnverified"]["Value"] in (1, 1.0, [1], [1.0])  # once, not one a run
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == (PBX,)  # never skipped on the prober's say-so
    (state,) = [h for h in health_store.all_health() if h.target == PBX]
    assert state.state == "unverified" and state.failures == 0 and not state.reached
    check(rules, {}, 5)
    check(rules, firewalled, 6)
    assert [e.kind for e in events.events_of("+14155550100") if e.detail.get("target") == PBX][-1] == "verified"
    (state,) = [h for h in health_store.all_health() if h.target == PBX]
    assert state.state == "up" and state.failures == 1  # reached now: failures count from here


def test_a_target_that_leaves_the_rules_and_comes_back_starts_unverified(rules: dict[str, Rule]) -> None:
    check(rules, {}, 0)
    without = {number: rule for number, rule in rules.items() if number != "+14155550200"}
    report = check(without, {}, 1)
    assert report.errors == [] and "sip:sales@pbx.example.com" not in {h.target for h in health_store.all_health()}
    check(rules, {"sip:sales@pbx.example.com": (State.DOWN, "timeout")}, 2)
    (state,) = [h for h in health_store.all_health() if h.target == "sip:sales@pbx.example.com"]
    assert state.state == "unverified" and not state.reached


def test_webhook_skips_a_down_primary_and_dials_it_again_once_up(rules: dict[str, Rule], webhook: Webhook) -> None:
    from failover_did.webhook import app

    dead = {PBX: (State.DOWN, "refused")}
    check(rules, {}, -1)
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
    check(rules, {}, -1)
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
    assert state.failures == 1 and state.state == "unverified"  # live failures count before any probe reached it
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


def _counter(target: str) -> int:
    """How often the target's own entry in its health shard was written."""
    from failover_did.store.tables import HealthShard

    return int(health_store.entries(HealthShard.get(health_store.shard_key(target)))[target]["v"])


def _neighbour(target: str) -> str:
    """Another target name that hashes to the same health shard."""
    key = health_store.shard_key(target)
    return next(
        f"sip:desk{i}@neighbour.example.com"
        for i in range(10_000)
        if health_store.shard_key(f"sip:desk{i}@neighbour.example.com") == key
    )


def test_overlapping_live_writes_never_lose_a_count(rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another live write lands between our read and our write: ours is refused by the entry's counter,
    re-read and folded again, so all failures count. (Interleaved by hand: moto's conditional writes are
    not atomic across threads, DynamoDB's are.)"""
    from failover_did.store.tables import HealthShard

    health_store.record_check(PBX, "up", "200", T0)  # reached once, so probe failures count
    real_update = HealthShard.update
    interleaved = 0

    def update_after_another_writer(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        nonlocal interleaved
        if interleaved < 2:
            interleaved += 1
            monkeypatch.setattr(HealthShard, "update", real_update)
            health_store.record_check(PBX, "down", "timeout", T0, Thresholds(down_after=100), f"CA{interleaved}#0")
            monkeypatch.setattr(HealthShard, "update", update_after_another_writer)
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(HealthShard, "update", update_after_another_writer)
    health_store.record_check(PBX, "down", "503", T0, Thresholds(down_after=100), "CA9#0")
    monkeypatch.setattr(HealthShard, "update", real_update)
    assert interleaved == 2 and _health(PBX).failures == 3  # ours, after two writes that landed in between
    assert _counter(PBX) == 4


def test_a_live_failure_landing_inside_a_checker_run_is_kept_and_counted(
    rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker read the shard, a live call's failure is written, then the checker writes the shard:
    refused by the shard's version, the checker reads again and folds its probe onto the live count."""
    from failover_did.store.tables import HealthShard

    check(rules, {}, 0)
    real_save = HealthShard.save
    landed = 0

    def save_after_a_live_failure(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        nonlocal landed
        if self.target == health_store.shard_key(PBX) and not landed:
            landed += 1
            health_store.record_check(PBX, "down", "503", T0 + timedelta(minutes=1), passive_key="CA1#0")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(HealthShard, "save", save_after_a_live_failure)
    report = check(rules, {PBX: (State.DOWN, "timeout")}, 1)
    assert landed == 1 and report.down == [PBX] and report.errors == []  # the live failure + the probe = 2
    assert [(t.target, t.kind) for t in report.transitions] == [(PBX, "unreachable")]
    assert _health(PBX).failures == 2 and _health(PBX).state == "down"


def test_a_checker_run_landing_inside_a_live_write_is_kept_and_counted(
    rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live call read the shard, a checker run changes this target, then the live write goes out:
    refused by the entry's counter, read again and folded onto the checker's verdict."""
    from failover_did.store.tables import HealthShard

    check(rules, {}, 0)
    real_update = HealthShard.update
    ran = 0

    def update_after_a_checker_run(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        nonlocal ran
        if not ran:
            ran += 1
            check(rules, {PBX: (State.DOWN, "timeout")}, 1)
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(HealthShard, "update", update_after_a_checker_run)
    transition = health_store.record_check(PBX, "down", "503", T0 + timedelta(minutes=1), passive_key="CA1#0")
    assert ran == 1 and transition is not None and transition.kind == "unreachable"
    assert _health(PBX).failures == 2 and _health(PBX).state == "down" and _counter(PBX) == 3


def test_a_live_write_is_not_refused_by_a_checker_write_of_another_target_in_its_shard(
    monkeypatch: pytest.MonkeyPatch, aws: Any
) -> None:
    """Checker and live call touched different targets of one shard: the live write goes through on its
    first try, and the checker's change to the other target stays."""
    from failover_did.store.tables import HealthShard

    other = _neighbour(PBX)
    health_store.record_check(PBX, "up", "200", T0)
    health_store.record_check(other, "up", "200", T0)
    real_update = HealthShard.update
    calls = 0

    def update_after_another_target_changed(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            folds = {
                PBX: lambda h: (h, None),
                other: lambda h: judge(h, "down", "timeout", "2026-11-28T10:01:00Z"),
            }
            health_store.record_shard(health_store.shard_key(PBX), folds, T0 + timedelta(minutes=1))
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(HealthShard, "update", update_after_another_target_changed)
    health_store.record_check(PBX, "down", "503", T0 + timedelta(minutes=1), passive_key="CA1#0")
    assert calls == 1  # not refused: no second try
    assert _health(PBX).failures == 1 and _health(other).failures == 1


def test_checker_handler_reads_the_rules_and_reports(rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch) -> None:
    async def all_refused(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, State.DOWN, "refused", None) for t in targets}

    monkeypatch.setattr(checker, "_probe", all_refused)
    from failover_did_cli.apigw import LambdaContext

    result = checker.handler({}, LambdaContext())
    assert result["down"] == [] and result["unverified"] == 3 and result["errors"] == []  # never reached: unverified


def _sb(result: Any) -> tuple[int, str]:
    return result.status, result.body


def _health(target: str) -> Any:
    (state,) = [h for h in health_store.all_health() if h.target == target]
    return state


def test_an_answered_leg_ends_a_failure_streak_and_counts_once(rules: dict[str, Rule], webhook: Webhook) -> None:
    check(rules, {}, 0)
    failed = call_params(sid="CA" + "a" * 32, DialCallStatus="failed", DialSipResponseCode="503")
    webhook.post("/voice/action", failed, "tier=0&hop=1")
    assert _health(PBX).failures == 1
    answered = call_params(sid="CA" + "b" * 32, DialCallStatus="completed", DialBridged="true")
    webhook.post("/voice/action", answered, "tier=0&hop=1")
    version = _counter(PBX)
    assert _health(PBX).failures == 0 and _health(PBX).answered_at
    webhook.post("/voice/action", answered, "tier=0&hop=1")  # retried callback
    again = call_params(sid="CA" + "c" * 32, DialCallStatus="completed", DialBridged="true")
    webhook.post("/voice/action", again, "tier=0&hop=1")  # changes nothing worth a write
    assert _counter(PBX) == version


def test_answered_while_probes_say_down_is_recorded_once(rules: dict[str, Rule], webhook: Webhook) -> None:
    check(rules, {}, 0)
    dead = {PBX: (State.DOWN, "503")}
    check(rules, dead, 1)
    check(rules, dead, 2)
    for sid in ("d", "e"):
        answered = call_params(sid="CA" + sid * 32, DialCallStatus="completed")
        webhook.post("/voice/action", answered, "tier=0&hop=1")
    kinds = [e.kind for e in events.events_of("+14155550100") if e.detail.get("target") == PBX]
    assert kinds == ["unreachable", "disagreement", "recovered"]  # two answers bring it back (up_after 2)
    assert _health(PBX).state == "up"


def test_test_calls_are_never_evidence(rules: dict[str, Rule], webhook: Webhook) -> None:
    from failover_did.health import transitions
    from failover_did.routing import DialOutcome

    check(rules, {}, 0)
    before = _health(PBX)
    drill = call_params(sid="CAdrill" + "0" * 27, DialCallStatus="failed", DialSipResponseCode="503")
    webhook.post("/voice/action", drill, "tier=0&hop=1")
    webhook.post("/voice/action", {**drill, "CallSid": "CAdrill" + "1" * 27}, "tier=0&hop=1")
    rule = rules["+14155550100"]
    transitions.count_live_failure(rule, 0, DialOutcome("failed", 503), "CA" + "f" * 32, T0, is_test=True)
    transitions.count_live_success(rule, 0, DialOutcome("completed"), "CA" + "f" * 32, T0, is_test=True)
    assert _health(PBX) == before


def test_probe_false_tier_is_judged_on_live_calls_only(aws: Any, webhook: Webhook) -> None:
    from failover_did.rules.validate import parse_rules_yaml
    from failover_did.store.rules_store import apply_rules
    from failover_did.webhook import app

    quiet = "sip:desk@quiet.example.com"
    yaml = f"""
numbers:
  "+14155550100":
    primary: {{target: "{quiet}", probe: false}}
    failover: [{{target: "+14155550111"}}]
"""
    parsed = parse_rules_yaml(yaml)
    apply_rules(parsed)
    assert checker.probe_plan(parsed.values())[quiet][0].probed is False
    probed: list[str] = []

    async def record_targets(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        probed.extend(targets)
        return {}

    checker.run_checks(parsed.values(), prober=record_targets, timeout=0.1, now=lambda: T0)
    assert probed == []
    for sid in ("a", "b"):
        failed = call_params(sid="CA" + sid * 32, DialCallStatus="failed", DialSipResponseCode="503")
        webhook.post("/voice/action", failed, "tier=0&hop=1")
    assert _health(quiet).state == "down"
    app.health.clear()
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == ("+14155550111",)
    later = datetime.now(UTC) + timedelta(hours=1)  # nothing can probe it, so after the hold it is dialed again
    report = checker.run_checks(parsed.values(), prober=record_targets, timeout=0.1, now=lambda: later)
    assert [t.kind for t in report.transitions] == ["retrying"] and _health(quiet).state == "unverified"
    app.health.clear()
    reply = parse_reply(*_sb(webhook.post("/voice", call_params())))
    assert reply.dial is not None and reply.dial.targets == (quiet,)


def test_a_prober_that_raises_for_one_target_costs_only_that_target(rules: dict[str, Rule]) -> None:
    async def breaks_on_dr(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        wanted = list(targets)
        if DR in wanted:
            raise RuntimeError("resolver exploded")
        return {t: ProbeResult(t, State.UP, "200", 1.0) for t in wanted}

    report = checker.run_checks(rules.values(), prober=breaks_on_dr, timeout=0.1, now=lambda: T0)
    assert report.unknown == [DR] and report.errors == []
    assert _health(PBX).state == "up" and _health("sip:sales@pbx.example.com").state == "up"
    assert _health(DR).state == "unverified"


def test_a_store_that_fails_for_one_target_or_the_scan_or_the_marker_does_not_stop_the_run(
    rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynamodb.exceptions import PutError

    from failover_did.store.tables import HealthShard

    assert len({health_store.shard_key(t) for t in (PBX, DR, "sip:sales@pbx.example.com")}) == 3
    real_save = HealthShard.save

    def save(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        if self.target == health_store.shard_key(DR):
            raise PutError("throttled")
        return real_save(self, *args, **kwargs)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise PutError("table gone")

    monkeypatch.setattr(HealthShard, "save", save)
    monkeypatch.setattr(health_store, "shards", broken)
    monkeypatch.setattr(health_store, "mark_run", broken)
    report = check(rules, {}, 0)
    assert len(report.errors) == 3 and len([e for e in report.errors if e.startswith(DR + ": ")]) == 1
    assert {e.split(":")[0] for e in report.errors if not e.startswith(DR)} == {"health scan", "run marker"}
    assert _health(PBX).state == "up" and _health("sip:sales@pbx.example.com").state == "up"


def test_answered_calls_at_a_live_only_target_write_at_most_once_in_ten_minutes(aws: Any, webhook: Webhook) -> None:
    from failover_did.health import transitions
    from failover_did.routing import DialOutcome
    from failover_did.rules.validate import parse_rules_yaml
    from failover_did.store.rules_store import apply_rules

    quiet = "sip:desk@quiet.example.com"
    parsed = parse_rules_yaml(
        f'numbers:\n  "+14155550100":\n    primary: {{target: "{quiet}", probe: false}}\n'
        '    failover: [{target: "+14155550111"}]\n'
    )
    apply_rules(parsed)
    rule = parsed["+14155550100"]
    for minute, sid in enumerate("abcde"):
        at = T0 + timedelta(minutes=minute)
        transitions.count_live_success(rule, 0, DialOutcome("completed"), "CA" + sid * 32, at)
    assert _counter(quiet) == 1 and _health(quiet).answered_at == "2026-11-28T10:00:00Z"
    later = T0 + timedelta(minutes=11)
    transitions.count_live_success(rule, 0, DialOutcome("completed"), "CA" + "f" * 32, later)
    assert _counter(quiet) == 2 and _health(quiet).answered_at == "2026-11-28T10:11:00Z"


def test_events_that_cannot_be_written_do_not_undo_the_run(
    rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynamodb.connection.base import Connection
    from pynamodb.exceptions import PutError

    check(rules, {}, 0)
    dead = {PBX: (State.DOWN, "503")}
    check(rules, dead, 1)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PutError("events table unavailable")

    monkeypatch.setattr(Connection, "batch_write_item", refuse)
    report = check(rules, dead, 2)
    assert [t.kind for t in report.transitions] == ["unreachable"] and report.down == [PBX]
    assert [e.split(":")[0] for e in report.errors] == ["events"]
    assert _health(PBX).state == "down" and health_store.last_run() == "2026-11-28T10:02:00Z"


def test_a_target_the_prober_says_nothing_about_is_unknown_not_down(rules: dict[str, Rule]) -> None:
    check(rules, {}, 0)

    async def forgets_dr(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, State.DOWN, "503", None) for t in targets if t != DR}

    for minute in (1, 2):
        at = T0 + timedelta(minutes=minute)
        report = checker.run_checks(rules.values(), prober=forgets_dr, timeout=0.1, now=lambda at=at: at)
    assert report.unknown == [DR] and DR not in report.down and PBX in report.down
    assert _health(DR).state == "up" and _health(DR).failures == 0


def test_a_mass_outage_is_one_write_per_shard_not_one_per_target(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """300 targets go down in one run: every one is judged and told, and the health table sees one scan and
    one conditional write per shard holding them (never a read or a write per target)."""
    from failover_did.health.transitions import Use
    from failover_did.store.tables import HealthShard

    targets = [f"sip:desk{i}@pbx{i}.example.com" for i in range(300)]
    plan = {t: [Use(f"+1415555{i:04d}", 0)] for i, t in enumerate(targets)}
    checker.record_results(plan, {t: ProbeResult(t, State.UP, "200", 1.0) for t in targets}, T0)
    saved: list[str] = []
    real_save = HealthShard.save

    def save(self: HealthShard, *args: Any, **kwargs: Any) -> Any:
        saved.append(self.target)
        return real_save(self, *args, **kwargs)

    def get(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a shard read one by one")

    monkeypatch.setattr(HealthShard, "save", save)
    monkeypatch.setattr(HealthShard, "get", get)
    down = {t: ProbeResult(t, State.DOWN, "timeout", None) for t in targets}
    for minute in (1, 2):
        saved.clear()
        report = checker.record_results(plan, down, T0 + timedelta(minutes=minute))
        shards = {health_store.shard_key(t) for t in targets}
        assert sorted(saved) == sorted([*shards, health_store.RUN_MARKER]) and len(shards) <= health_store.SHARDS
    assert report.errors == [] and report.down == sorted(targets) and len(report.transitions) == 300
    assert sum(1 for h in health_store.all_health() if h.state == "down") == 300
