"""What a destination's news leaves behind (one event per number it serves, and a metric), and the live
evidence the webhook feeds in: answered legs and failed ones. Shared by the checker and the webhook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import PynamoDBException

from failover_did import metric_names as m
from failover_did.health.hysteresis import (
    CANNOT_REACH,
    DOWN,
    RECOVERED,
    UNREACHABLE,
    Thresholds,
    Transition,
    observe_live_success,
)
from failover_did.observability import logger, metrics
from failover_did.routing import DialOutcome, answered, live_failure_reason, probe_target
from failover_did.rules.model import Rule
from failover_did.settings import settings
from failover_did.store import breaker, events, health_store

# The news that is also a metric (the rest is in the event log only).
METRIC_OF_KIND = {
    UNREACHABLE: m.DESTINATION_DOWN,
    RECOVERED: m.DESTINATION_RECOVERED,
    CANNOT_REACH: m.DESTINATION_UNVERIFIED,
}
_SAID = {
    UNREACHABLE: "destination unreachable",
    RECOVERED: "destination recovered",
    CANNOT_REACH: "the prober cannot reach this destination; it is dialed as usual",
    "verified": "the prober reaches this destination now",
    "retrying": "down on live calls only and nothing can probe it: dialed again",
    "disagreement": "a live call was answered while probes say down",
}


@dataclass(frozen=True)
class Use:
    """Where a target serves: which number, which tier, and whether that tier is probed."""

    number: str
    tier: int
    probed: bool = True

    @property
    def tier_name(self) -> str:
        return "primary" if self.tier == 0 else f"failover tier {self.tier}"


def said(kind: str) -> str:
    return _SAID.get(kind, kind)


def event_detail(transition: Transition, use: Use) -> dict[str, Any]:
    return {
        "target": transition.target,
        "tier": use.tier,
        "tier_name": use.tier_name,
        "state": transition.became,
        "reason": transition.reason,
        "said": said(transition.kind),
    }


def count_metrics(transitions: Iterable[Transition]) -> None:
    """One metric value per kind of news, however many targets changed (a mass outage is one number)."""
    counts = Counter(METRIC_OF_KIND[t.kind] for t in transitions if t.kind in METRIC_OF_KIND)
    for name, count in sorted(counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)


def record_transition(transition: Transition, uses: list[Use], at: datetime) -> None:
    """A destination's news: one event per number it serves, and a metric."""
    count_metrics([transition])
    logger.warning(
        said(transition.kind),
        extra={"target": transition.target, "state": transition.became, "reason": transition.reason},
    )
    for use in uses:
        detail = event_detail(transition, use)
        events.record(use.number, transition.kind, at, detail, f"{transition.kind}#{transition.target}")


def count_live_failure(
    rule: Rule, index: int, outcome: DialOutcome, call_sid: str, at: datetime, *, is_test: bool = False
) -> None:
    """A live call's leg to a judged tier failed in a way that says the destination is unwell: count it as
    a failed check (once per call and tier, however often Twilio retries the webhook). A test call is
    never evidence."""
    tier = rule.tiers[index] if 0 <= index < len(rule.tiers) else None
    reason = live_failure_reason(outcome)
    if is_test or tier is None or reason is None or not tier.is_judged:
        return
    metrics.add_metric(name=m.PASSIVE_FAILURES, unit=MetricUnit.Count, value=1)
    _record_live(
        rule,
        index,
        lambda: health_store.record_check(
            probe_target(tier), DOWN, reason, at, Thresholds.of(settings()), passive_key=f"{call_sid}#{index}"
        ),
        at,
    )


def count_live_success(
    rule: Rule, index: int, outcome: DialOutcome, call_sid: str, at: datetime, *, is_test: bool = False
) -> None:
    """A live call's leg to a judged tier was answered: it ends a failure streak and counts toward coming
    back from down. Written only when it changes something (at most once per call and tier)."""
    tier = rule.tiers[index] if 0 <= index < len(rule.tiers) else None
    if is_test or tier is None or not tier.is_judged or not answered(tier, outcome):
        return
    stamp = health_store.stamp(at)
    thresholds = Thresholds.of(settings())
    _record_live(
        rule,
        index,
        lambda: health_store.record(
            probe_target(tier),
            lambda h: observe_live_success(h, stamp, thresholds),
            at,
            passive_key=f"{call_sid}#{index}",
        ),
        at,
    )


def _record_live(rule: Rule, index: int, write: Callable[[], Transition | None], at: datetime) -> None:
    target = probe_target(rule.tiers[index])
    try:
        transition = breaker.dynamodb.call(write)
    except PynamoDBException as error:
        logger.error("live health write failed", extra={"target": target, "error": str(error)})
        return
    if transition is not None:
        try:
            record_transition(transition, [Use(rule.number, index, rule.tiers[index].is_probed)], at)
        except PynamoDBException as error:
            logger.error("health event not written", extra={"target": target, "error": str(error)})
