"""The scheduled health checker: probe every distinct destination the rules name, judge each with the
evidence model (health/hysteresis.py), and record the news as events and metrics.

One target never stops the run: a probe that raises becomes that target's UNKNOWN result, a write that
fails becomes an entry in the report's errors (for every target of its shard), and the others go on.
Health is kept in shards of ~80 targets (store/health_store.py); the changed shards are written
concurrently, each one conditional write, so a run over 10,000 targets is a few hundred requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from failover_did import metric_names as m
from failover_did.health.hysteresis import DOWN, UNKNOWN, UNVERIFIED, Thresholds, Transition, judge
from failover_did.health.probe import ProbeResult, probe_many
from failover_did.health.transitions import Use, count_metrics, event_detail, said
from failover_did.observability import logger, metrics
from failover_did.routing import probe_target
from failover_did.rules.model import Rule
from failover_did.settings import settings
from failover_did.store import events, health_store, rules_store
from failover_did.store.tables import EventItem, HealthShard

Prober = Callable[[Iterable[str], float], Coroutine[Any, Any, Mapping[str, ProbeResult]]]
WRITERS = 16  # health shards written at once: each is a different item, so they never contend
# Probes in flight at once, each holding one socket: below Lambda's 1,024 file descriptors with room for the
# writers' connections. 10,000 silent targets then take 13 rounds of one probe timeout, not 20.
PROBE_CONCURRENCY = 800
LOGGED_NEWS = 100  # past this many changes in one run, one summary line instead of one line each


class Verdict(Protocol):
    """What the checker needs of a probe result."""

    @property
    def state(self) -> str: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class NoProbe:
    """A probe that could not be made (it raised, or the prober returned nothing for the target)."""

    target: str
    reason: str
    state: str = UNKNOWN


@dataclass
class Report:
    probed: int = 0
    down: list[str] = field(default_factory=list)  # targets down after this run
    unverified: list[str] = field(default_factory=list)  # probed targets the prober has never reached
    unknown: list[str] = field(default_factory=list)  # probes that could not be made this run
    transitions: list[Transition] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def probe_plan(rules: Iterable[Rule]) -> dict[str, list[Use]]:
    """Target -> where it is used, for every tier with a health state: SIP tiers at their target, any tier
    with `health:` at that URL or URI. A phone number without one has no state (and is never skipped).
    A target is probed when any of its uses is (`probe: false` on every use: live evidence only)."""
    plan: dict[str, list[Use]] = {}
    for rule in rules:
        for index, tier in enumerate(rule.tiers):
            if tier.is_judged:
                plan.setdefault(probe_target(tier), []).append(Use(rule.number, index, tier.is_probed))
    return plan


def probed(plan: Mapping[str, list[Use]]) -> list[str]:
    return [target for target, uses in plan.items() if any(use.probed for use in uses)]


async def _probe(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
    return await probe_many(targets, timeout=timeout, concurrency=PROBE_CONCURRENCY)


def probe_targets(
    plan: Mapping[str, list[Use]], *, prober: Prober | None = None, timeout: float | None = None
) -> dict[str, Verdict]:
    """Probe every probed target of the plan at once (about one probe timeout in all); a target whose
    probe could not be made gets an UNKNOWN verdict."""
    limit = timeout if timeout is not None else settings().probe_timeout_seconds
    return asyncio.run(_probe_all(prober or _probe, probed(plan), limit))


async def _probe_all(prober: Prober, targets: list[str], timeout: float) -> dict[str, Verdict]:
    try:
        found: dict[str, Verdict] = dict(await prober(targets, timeout))
    except Exception as error:  # one bad target must not cost the others their probes: each on its own
        logger.error("probing all targets at once failed; probing each alone", extra={"error": str(error)})
        alone = await asyncio.gather(*(prober([t], timeout) for t in targets), return_exceptions=True)
        found = {}
        for target, outcome in zip(targets, alone, strict=True):
            if isinstance(outcome, BaseException):
                found[target] = NoProbe(target, f"error: {type(outcome).__name__}: {outcome}")
            elif target in outcome:
                found[target] = outcome[target]
    return {t: found.get(t) or NoProbe(t, "error: the prober gave no result") for t in targets}


def record_results(
    plan: Mapping[str, list[Use]],
    results: Mapping[str, Verdict],
    at: datetime,
    thresholds: Thresholds | None = None,
) -> Report:
    """Judge every target of the plan (the probed ones with their result, the rest on live evidence
    alone), write what changed shard by shard, record the news; forget targets no rule names any more."""
    thresholds = thresholds or Thresholds.of(settings())
    stamp = health_store.stamp(at)
    report = Report(probed=len(results))
    try:
        known: dict[str, HealthShard] | None = health_store.shards()
    except Exception as error:  # each shard is then read on its own
        logger.error("health scan failed", extra={"error": str(error)})
        report.errors.append(f"health scan: {error}")
        known = None

    def fold_of(target: str) -> health_store.ShardFold:
        result = results.get(target)
        state = str(result.state) if result is not None else None
        reason = result.reason if result is not None else ""
        return lambda health: judge(health, state, reason, stamp, thresholds)

    grouped = health_store.targets_in(plan)
    for key in known or {}:
        grouped.setdefault(key, [])  # a shard whose targets all left the rules: emptied

    def one(key: str) -> health_store.ShardOutcome:
        folds = {target: fold_of(target) for target in sorted(grouped[key])}
        stored = known.get(key) or HealthShard(key) if known is not None else None
        return health_store.record_shard(key, folds, at, stored)

    news: list[tuple[Transition, list[Use]]] = []
    states: dict[str, str] = {}
    failed: set[str] = set()
    with ThreadPoolExecutor(max_workers=WRITERS) as pool, _EventWriter(at, report) as told:
        futures = {pool.submit(one, key): key for key in sorted(grouped)}
        for future in as_completed(futures):  # events go out as the changes land, not all at the end
            key = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # one shard's storage trouble must not stop the others
                for target in sorted(grouped[key]):
                    report.errors.append(f"{target}: {error}")
                failed.update(grouped[key])
                logger.error("health write failed", extra={"shard": key, "error": str(error)})
                continue
            states.update(outcome.states)
            for transition in outcome.transitions:
                news.append((transition, plan[transition.target]))
                told.add(transition, plan[transition.target])
    for target in sorted(plan):
        result = results.get(target)
        if result is not None and str(result.state) == UNKNOWN:
            report.unknown.append(target)
        if target in failed:
            continue
        if states.get(target) == DOWN:
            report.down.append(target)
        elif states.get(target) == UNVERIFIED and result is not None:
            report.unverified.append(target)
    report.transitions = sorted((t for t, _ in news), key=lambda t: t.target)
    _tell(news)
    try:
        health_store.mark_run(at, report.probed)
    except Exception as error:
        report.errors.append(f"run marker: {error}")
        logger.error("run marker not written", extra={"error": str(error)})
    return report


class _EventWriter:
    """The run's news written in batches of 25 while the run goes on (a run cut short by the Lambda
    timeout loses at most one batch). Unconditional: the event id holds the run's time, so no other
    writer can hold the same key."""

    def __init__(self, at: datetime, report: Report) -> None:
        self.at, self.report = at, report
        self.batch = EventItem.batch_write()

    def __enter__(self) -> _EventWriter:
        return self

    def add(self, transition: Transition, uses: list[Use]) -> None:
        event_id = f"{transition.kind}#{transition.target}"
        for use in uses:
            detail = event_detail(transition, use)
            try:
                self.batch.save(events.event_item(use.number, transition.kind, self.at, detail, event_id))
            except Exception as error:
                self._failed(error)

    def __exit__(self, *exc: object) -> None:
        try:
            self.batch.commit()
        except Exception as error:
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        self.report.errors.append(f"events: {error}")
        logger.error("health events not written", extra={"error": str(error)})


def _tell(news: list[tuple[Transition, list[Use]]]) -> None:
    count_metrics(t for t, _ in news)
    if len(news) <= LOGGED_NEWS:
        for transition, _ in news:
            logger.warning(
                said(transition.kind),
                extra={"target": transition.target, "state": transition.became, "reason": transition.reason},
            )
        return
    kinds: dict[str, int] = {}
    for transition, _ in news:
        kinds[transition.kind] = kinds.get(transition.kind, 0) + 1
    logger.warning("many destinations changed at once", extra={"changes": kinds})


def run_checks(
    rules: Iterable[Rule],
    *,
    prober: Prober | None = None,
    timeout: float | None = None,
    thresholds: Thresholds | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    plan = probe_plan(rules)
    results = probe_targets(plan, prober=prober, timeout=timeout)
    return record_results(plan, results, now(), thresholds)


settings()  # read and checked at cold start: a bad setting stops the container here, naming the variable


@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rules = [stored.rule for stored in rules_store.all_rules()]
    report = run_checks(rules)
    metrics.add_metric(name=m.HEALTH_CHECK_RUNS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=m.DESTINATIONS_DOWN, unit=MetricUnit.Count, value=len(report.down))
    metrics.add_metadata("down", report.down[:100])
    return {
        "probed": report.probed,
        "down": report.down,
        "unverified": len(report.unverified),
        "unknown": len(report.unknown),
        "changes": len(report.transitions),
        "errors": report.errors[:100],
    }
