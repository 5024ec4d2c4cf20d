"""The scheduled health checker: probe every distinct destination the rules name, fold each result into
that destination's state (with hysteresis), and record changes as events and metrics."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from failover_did import metric_names as m
from failover_did.health.hysteresis import DOWN, Thresholds, Transition
from failover_did.health.probe import DEFAULT_TIMEOUT, ProbeResult, probe_many
from failover_did.health.transitions import Use, record_transition
from failover_did.observability import logger, metrics
from failover_did.routing import probe_target
from failover_did.rules.model import Rule
from failover_did.store import health_store, rules_store
from failover_did.store.tables import HealthItem

Prober = Callable[[Iterable[str], float], Coroutine[Any, Any, dict[str, ProbeResult]]]


@dataclass
class Report:
    probed: int = 0
    down: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def probe_plan(rules: Iterable[Rule]) -> dict[str, list[Use]]:
    """Target -> where it is used. SIP tiers are probed at their target, any tier with `health:` at that
    URL or URI; a phone number without one is not probed (and so never skipped)."""
    plan: dict[str, list[Use]] = {}
    for rule in rules:
        for index, tier in enumerate(rule.tiers):
            if tier.is_probed:
                plan.setdefault(probe_target(tier), []).append(Use(rule.number, index))
    return plan


def probe_timeout_from_env() -> float:
    return min(10.0, float(os.environ.get("PROBE_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT))


async def _probe(targets: Iterable[str], timeout: float) -> dict[str, ProbeResult]:
    return await probe_many(targets, timeout=timeout)


def probe_targets(
    plan: dict[str, list[Use]], *, prober: Prober | None = None, timeout: float | None = None
) -> dict[str, ProbeResult]:
    """Probe every target of the plan at once (about one probe timeout in all)."""
    return asyncio.run((prober or _probe)(plan, timeout if timeout is not None else probe_timeout_from_env()))


def record_results(
    plan: dict[str, list[Use]], results: dict[str, ProbeResult], at: datetime, thresholds: Thresholds | None = None
) -> Report:
    """Fold each result into its target's health; a change becomes events and a metric."""
    thresholds = thresholds or Thresholds.from_env(os.environ)
    report = Report(probed=len(results))
    try:
        known = health_store.items_by_target()
    except Exception as error:  # each target is then read on its own
        logger.error("health scan failed", extra={"error": str(error)})
        known = {}
    for target, result in sorted(results.items()):
        if result.state == DOWN:
            report.down.append(target)
        try:
            transition = health_store.record_check(
                target, str(result.state), result.reason, at, thresholds, known=known.get(target) or HealthItem(target)
            )
        except Exception as error:  # one target's storage trouble must not stop the others
            report.errors.append(f"{target}: {error}")
            logger.error("health write failed", extra={"target": target, "error": str(error)})
            continue
        if transition is not None:
            report.transitions.append(transition)
            record_transition(transition, plan.get(target, []), at)
    health_store.mark_run(at, report.probed)
    return report


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


@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rules = [stored.rule for stored in rules_store.all_rules()]
    report = run_checks(rules)
    metrics.add_metric(name=m.HEALTH_CHECK_RUNS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=m.DESTINATIONS_DOWN, unit=MetricUnit.Count, value=len(report.down))
    metrics.add_metadata("down", report.down)
    return {"probed": report.probed, "down": report.down, "changes": len(report.transitions), "errors": report.errors}
