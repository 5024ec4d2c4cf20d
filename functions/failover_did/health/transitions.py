"""What a destination's change of state leaves behind: one event per number it serves, and a metric.
Shared by the checker and by the webhook's passive checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import PynamoDBException

from failover_did import metric_names as m
from failover_did.health.hysteresis import DOWN, Thresholds, Transition
from failover_did.observability import logger, metrics
from failover_did.routing import DialOutcome, live_failure_reason, probe_target
from failover_did.rules.model import Rule
from failover_did.store import breaker, events, health_store


@dataclass(frozen=True)
class Use:
    """Where a probed target serves: which number, which tier."""

    number: str
    tier: int

    @property
    def tier_name(self) -> str:
        return "primary" if self.tier == 0 else f"failover tier {self.tier}"


def record_transition(transition: Transition, uses: list[Use], at: datetime) -> None:
    """A destination went down or came back: one event per number it serves, and a metric."""
    name = m.DESTINATION_DOWN if transition.became == DOWN else m.DESTINATION_RECOVERED
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.warning(
        f"destination {transition.kind}",
        extra={"target": transition.target, "state": transition.became, "reason": transition.reason},
    )
    for use in uses:
        detail = {
            "target": transition.target,
            "tier": use.tier,
            "tier_name": use.tier_name,
            "state": transition.became,
            "reason": transition.reason,
        }
        events.record(use.number, transition.kind, at, detail, f"{transition.kind}#{transition.target}")


def count_live_failure(rule: Rule, index: int, outcome: DialOutcome, call_sid: str, at: datetime) -> None:
    """A live call's leg to a probed tier failed in a way that says the destination is unwell: count it
    as a failed probe (once per call and tier, however often Twilio retries the webhook)."""
    tier = rule.tiers[index] if 0 <= index < len(rule.tiers) else None
    reason = live_failure_reason(outcome)
    if tier is None or reason is None or not tier.is_probed:
        return
    metrics.add_metric(name=m.PASSIVE_FAILURES, unit=MetricUnit.Count, value=1)
    try:
        transition = breaker.dynamodb.call(
            lambda: health_store.record_check(
                probe_target(tier), DOWN, reason, at, Thresholds.from_env(os.environ), passive_key=f"{call_sid}#{index}"
            )
        )
    except PynamoDBException as error:
        logger.error("passive health write failed", extra={"target": tier.target, "error": str(error)})
        return
    if transition is not None:
        record_transition(transition, [Use(rule.number, index)], at)
