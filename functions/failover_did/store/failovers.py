"""A call's failover, written once however often Twilio retries the webhook: the event, and (on the
call's first failover) the number's monthly count, in one DynamoDB transaction."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from failover_did.store import breaker, events
from failover_did.store.calls import KEEP_SECONDS
from failover_did.store.tables import CallItem, FailoverCount, aws_region

COUNT_PREFIX = "count#"
COUNT_KEEP_DAYS = 400


@dataclass(frozen=True)
class Failover:
    number: str
    call_sid: str
    from_tier: int
    to_tier: int
    to_target: str
    reason: str
    first_of_call: bool  # the call's first move off the primary: what the monthly count counts
    test: bool = False  # a test call (simulate, drill): logged, marked, never counted


@lru_cache(maxsize=1)
def _connection() -> Connection:
    # Built once per container: a new connection means a new botocore client (tens of milliseconds).
    return Connection(region=aws_region(), host=getattr(CallItem.Meta, "host", None))


def month_key(at: datetime) -> str:
    return f"{COUNT_PREFIX}{at.astimezone(UTC):%Y-%m}"


def record_failover(failover: Failover, at: datetime) -> bool:
    """Write the failover event (and count it); False when this call's move to this tier was already
    written (a retried webhook)."""
    marker = CallItem(failover.call_sid, f"failover#{failover.to_tier}", expires_at=int(time.time()) + KEEP_SECONDS)
    detail = {
        "call_sid": failover.call_sid,
        "from_tier": failover.from_tier,
        "to_tier": failover.to_tier,
        "to_target": failover.to_target,
        "reason": failover.reason,
    }
    if failover.test:
        detail["test"] = True
    event = events.event_item(failover.number, "failover", at, detail, f"failover#{failover.call_sid}")
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(marker, condition=CallItem.item.does_not_exist())
            tx.save(event)
            if failover.first_of_call and not failover.test:
                tx.update(
                    FailoverCount(failover.number, month_key(at)),
                    actions=[
                        FailoverCount.failovers.add(1),
                        FailoverCount.expires_at.set(int(at.timestamp()) + COUNT_KEEP_DAYS * 86400),
                    ],
                )
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            return False
        raise
    return True


def failovers_this_month(number: str, at: datetime) -> int:
    try:
        return int(FailoverCount.get(number, month_key(at)).failovers)
    except FailoverCount.DoesNotExist:
        return 0


def counts_this_month(numbers: Collection[str], at: datetime) -> dict[str, int]:
    """The failovers this month of many numbers, in batched reads (100 keys a request); absent: none yet."""
    key = month_key(at)
    keys = [(number, key) for number in sorted(set(numbers))]
    return {item.number: int(item.failovers) for item in FailoverCount.batch_get(keys)}


def claim_budget_alert(number: str, at: datetime) -> bool:
    """True exactly once a month per number: the caller that crossed the budget sends the metric."""
    try:
        FailoverCount(number, month_key(at)).update(
            actions=[FailoverCount.budget_alerted.set(events.iso(at))],
            condition=FailoverCount.budget_alerted.does_not_exist(),
        )
    except UpdateError as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def record_and_count(failover: Failover, budget: int | None, at: datetime) -> tuple[bool, bool]:
    """Record the failover; returns (written now, this call crossed the number's monthly budget)."""
    written = record_failover(failover, at)
    if not (written and failover.first_of_call and not failover.test and budget):
        return written, False
    crossed = failovers_this_month(failover.number, at) > budget and claim_budget_alert(failover.number, at)
    return written, crossed
