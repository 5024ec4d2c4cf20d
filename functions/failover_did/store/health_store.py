"""Destination health in DynamoDB: a cached reader for the webhook, and conditional read-modify-write
updates (checker runs and live-call failures) that never lose each other's counts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DeleteError, PutError, PynamoDBException

from failover_did.health.hysteresis import (
    REACHED,
    UNVERIFIED,
    TargetHealth,
    Thresholds,
    Transition,
    judge,
    observe_live_failure,
)
from failover_did.store import breaker
from failover_did.store.tables import HealthItem

CACHE_SECONDS = 5.0
WRITE_RETRIES = 8
# A steady target is rewritten at most this often: every check would cost a billed write per minute.
STEADY_REWRITE = timedelta(minutes=10)
RUN_MARKER = "#checker"  # the item that records the last checker run
DEFAULT_THRESHOLDS = Thresholds()
LEGACY_UNCHECKED = "unknown"  # the state of a never-checked target before "unverified" existed


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
                    self._cache[target] = (found.get(target, UNVERIFIED), now)
        return {t: self._cache[t][0] for t in wanted if t in self._cache}

    def clear(self) -> None:
        self._cache.clear()


def to_health(item: HealthItem) -> TargetHealth:
    state = str(item.state)
    reached_at = item.reached_at or ""
    if not reached_at and item.checked_at and state in REACHED:
        reached_at = str(item.checked_at)  # written before reached_at existed: it was reached then
    return TargetHealth(
        target=item.target,
        state=UNVERIFIED if state == LEGACY_UNCHECKED else state,
        failures=int(item.failures),
        successes=int(item.successes),
        reason=item.reason,
        checked_at=item.checked_at,
        since=item.since,
        reached_at=reached_at,
        answered_at=item.answered_at or "",
        told_unverified=bool(item.told_unverified),
        told_disagreement=bool(item.told_disagreement),
    )


def _store(item: HealthItem, health: TargetHealth) -> None:
    item.state, item.failures, item.successes = health.state, health.failures, health.successes
    item.reason, item.checked_at, item.since = health.reason, health.checked_at, health.since
    item.reached_at = health.reached_at or None
    item.answered_at = health.answered_at or None
    item.told_unverified = health.told_unverified or None
    item.told_disagreement = health.told_disagreement or None


Fold = Callable[[TargetHealth], tuple[TargetHealth, Transition | None]]


def record(
    target: str,
    fold: Fold,
    at: datetime,
    passive_key: str | None = None,
    known: HealthItem | None = None,
) -> Transition | None:
    """Fold one piece of evidence into the target's state and write it if that changed anything worth
    keeping. Conditional on the version read; on a conflict the newer state is read and folded again.
    `passive_key` names a live call's leg, so a retried webhook counts once. `known` is the item as just
    read by the caller (the checker reads all of them in one scan)."""
    for attempt in range(WRITE_RETRIES):
        if attempt == 0 and known is not None:
            item = known
        else:
            try:
                item = HealthItem.get(target, consistent_read=True)
            except HealthItem.DoesNotExist:
                item = HealthItem(target)
        if passive_key is not None and item.passive_key == passive_key:
            return None  # this call's leg was counted already (a retried webhook)
        before = to_health(item)
        after, transition = fold(before)
        fresh = item.version is None  # never stored: any news about it is worth an item
        if not (fresh and after != before) and not worth_writing(before, after, transition, at):
            return None
        _store(item, after)
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


def record_check(
    target: str,
    result: str,
    reason: str,
    at: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    passive_key: str | None = None,
    known: HealthItem | None = None,
) -> Transition | None:
    """Fold one probe result into the target's state; with `passive_key`, a live call's failure instead
    (which counts whether or not the prober ever reached the target)."""
    when = stamp(at)
    if passive_key is not None:
        return record(target, lambda h: observe_live_failure(h, reason, when, thresholds), at, passive_key, known)
    return record(target, lambda h: judge(h, result, reason, when, thresholds), at, None, known)


def worth_writing(before: TargetHealth, after: TargetHealth, transition: Transition | None, at: datetime) -> bool:
    """Whether a stored item must be rewritten: anything that changes a decision or the news, counters while
    they still matter, and otherwise a steady target's times only every STEADY_REWRITE."""
    if transition or after.state != before.state or after.reason != before.reason:
        return before != after
    if (after.reached_at, after.told_unverified, after.told_disagreement) != (
        before.reached_at,
        before.told_unverified,
        before.told_disagreement,
    ):
        return True
    if (after.failures, after.successes) != (before.failures, before.successes) and (
        (after.failures <= 10 and after.successes <= 10) or (before.failures != 0 and after.failures == 0)
    ):
        return True  # counters still matter for hysteresis; past 10 in a row they change nothing
    if after.answered_at and (not before.answered_at or _age(before.answered_at, after.answered_at) >= STEADY_REWRITE):
        return True
    if after.checked_at == before.checked_at:
        return False
    return not before.checked_at or _age(before.checked_at, stamp(at)) >= STEADY_REWRITE


def items_by_target() -> dict[str, HealthItem]:
    """Every health item, read in one consistent scan (one checker run reads this once, not per target)."""
    return {item.target: item for item in HealthItem.scan(consistent_read=True) if item.target != RUN_MARKER}


def _age(since: str, until: str) -> timedelta:
    return datetime.fromisoformat(until.replace("Z", "+00:00")) - datetime.fromisoformat(since.replace("Z", "+00:00"))


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def forget(target: str) -> None:
    """Delete a target's state (it left the rules); a write that lands in between keeps it."""
    try:
        HealthItem.get(target, consistent_read=True).delete()
    except HealthItem.DoesNotExist:
        return
    except DeleteError as error:
        if breaker.error_code(error) != "ConditionalCheckFailedException":
            raise


def all_health() -> list[TargetHealth]:
    return [to_health(item) for item in HealthItem.scan() if item.target != RUN_MARKER]


def mark_run(at: datetime, probed: int) -> None:
    """Record that a checker run finished (what `status` shows as the time of the last check)."""
    when = stamp(at)
    item = HealthItem(RUN_MARKER, state="run", reason=f"{probed} targets", checked_at=when, since=when)
    item.save(add_version_condition=False)


def last_run() -> str | None:
    try:
        return str(HealthItem.get(RUN_MARKER).checked_at)
    except HealthItem.DoesNotExist:
        return None
