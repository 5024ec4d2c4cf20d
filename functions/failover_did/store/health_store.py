"""Destination health in DynamoDB: a cached reader for the webhook, and conditional read-modify-write
updates (checker runs and live-call failures) that never lose each other's counts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import PutError, PynamoDBException

from failover_did.health.hysteresis import UNKNOWN, TargetHealth, Thresholds, Transition, observe
from failover_did.store import breaker
from failover_did.store.tables import HealthItem

CACHE_SECONDS = 5.0
WRITE_RETRIES = 8
# A steady target is rewritten at most this often: every check would cost a billed write per minute.
STEADY_REWRITE = timedelta(minutes=10)
RUN_MARKER = "#checker"
DEFAULT_THRESHOLDS = Thresholds()  # the item that records the last checker run


class HealthReader:
    """States of probed targets for the webhook, cached briefly; on DynamoDB errors the last states
    read are used (and targets never read count as not probed: dialed normally)."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    def states(self, targets: Iterable[str]) -> dict[str, str]:
        now = self._clock()
        wanted = set(targets)
        stale = [t for t in wanted if t not in self._cache or now - self._cache[t][1] >= self._ttl]
        if stale:
            try:
                found = breaker.dynamodb.call(lambda: {i.target: i.state for i in HealthItem.batch_get(stale)})
            except PynamoDBException:
                found = None
            if found is not None:
                for target in stale:
                    self._cache[target] = (found.get(target, UNKNOWN), now)
        return {t: self._cache[t][0] for t in wanted if t in self._cache}

    def clear(self) -> None:
        self._cache.clear()


def to_health(item: HealthItem) -> TargetHealth:
    return TargetHealth(
        target=item.target,
        state=item.state,
        failures=int(item.failures),
        successes=int(item.successes),
        reason=item.reason,
        checked_at=item.checked_at,
        since=item.since,
    )


def record_check(
    target: str,
    result: str,
    reason: str,
    at: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    passive_key: str | None = None,
    known: HealthItem | None = None,
) -> Transition | None:
    """Fold one check (or a live call's failure, with `passive_key` naming it) into the target's state.
    Conditional on the version read; on a conflict the newer state is read and the result folded again.
    `known` is the item as just read by the caller (the checker reads all of them in one scan)."""
    stamp = _stamp(at)
    for attempt in range(WRITE_RETRIES):
        if attempt == 0 and known is not None:
            item = known
        else:
            try:
                item = HealthItem.get(target, consistent_read=True)
            except HealthItem.DoesNotExist:
                item = HealthItem(target)
        if passive_key is not None and item.passive_key == passive_key:
            return None  # this call's failure was counted already (a retried webhook)
        before = to_health(item)
        after, transition = observe(before, result, reason, stamp, thresholds)
        if passive_key is None and not _worth_writing(before, after, transition, at):
            return None
        item.state, item.failures, item.successes = after.state, after.failures, after.successes
        item.reason, item.checked_at, item.since = after.reason, after.checked_at, after.since
        if passive_key is not None:
            item.passive_key = passive_key
        try:
            item.save()
        except PutError as error:
            if breaker.error_code(error) == "ConditionalCheckFailedException":
                time.sleep(random.uniform(0.005, 0.05))  # let the other writer finish, then fold again
                continue
            raise
        return transition
    raise PynamoDBException(f"health of {target} kept changing under us; gave up after {WRITE_RETRIES} tries")


def _worth_writing(before: TargetHealth, after: TargetHealth, transition: Transition | None, at: datetime) -> bool:
    if transition or after.state != before.state or after.reason != before.reason or not before.checked_at:
        return True
    if (after.failures, after.successes) != (before.failures, before.successes) and (
        after.failures <= 10 and after.successes <= 10
    ):
        return True  # counters still matter for hysteresis; past 10 in a row they change nothing
    last = datetime.fromisoformat(before.checked_at.replace("Z", "+00:00"))
    return at - last >= STEADY_REWRITE


def items_by_target() -> dict[str, HealthItem]:
    """Every health item, read in one consistent scan (one checker run reads this once, not per target)."""
    return {item.target: item for item in HealthItem.scan(consistent_read=True) if item.target != RUN_MARKER}


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def all_health() -> list[TargetHealth]:
    return [to_health(item) for item in HealthItem.scan() if item.target != RUN_MARKER]


def mark_run(at: datetime, probed: int) -> None:
    """Record that a checker run finished (what `status` shows as the time of the last check)."""
    stamp = _stamp(at)
    item = HealthItem(RUN_MARKER, state="run", reason=f"{probed} targets", checked_at=stamp, since=stamp)
    item.save(add_version_condition=False)


def last_run() -> str | None:
    try:
        return str(HealthItem.get(RUN_MARKER).checked_at)
    except HealthItem.DoesNotExist:
        return None
