"""Destination health in DynamoDB, kept in SHARDS items (tables.HealthShard) so that a checker run over
thousands of targets costs a few hundred requests, not one per target: a cached reader for the webhook,
the checker's whole-shard writes, and live calls' one-target writes, all conditional so that none of them
ever loses another's counts."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError

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
from failover_did.store.tables import HealthShard

CACHE_SECONDS = 5.0
WRITE_RETRIES = 8
# A steady target is rewritten at most this often: every check would cost a billed write per minute.
STEADY_REWRITE = timedelta(minutes=10)
RUN_MARKER = "#checker"  # the item that records the last checker run
DEFAULT_THRESHOLDS = Thresholds()
LEGACY_UNCHECKED = "unknown"  # the state of a never-checked target before "unverified" existed
# Fixed for the life of a table (a target's shard is a hash of its name). An entry is ~150-300 bytes, so
# 10,000 targets make shards of ~80 targets and ~20 KB, and DynamoDB's 400 KB item limit is reached near
# 150,000 targets. A live call's write is billed by its shard's size (~20 WCU at 10,000 targets).
SHARDS = 128
SHARD_PREFIX = "#health#"

# TargetHealth field -> the short name it is stored under; fields at their default are not stored.
_SHORT = {
    "state": "st",
    "failures": "f",
    "successes": "s",
    "reason": "r",
    "checked_at": "c",
    "since": "si",
    "reached_at": "ra",
    "answered_at": "aa",
    "told_unverified": "tu",
    "told_disagreement": "td",
}
COUNTER = "v"  # an entry's own write counter: every write changes the entry, so "as read" is a safe condition
PASSIVE_KEY = "pk"  # the last live call's leg counted, so a retried webhook counts once

Entry = dict[str, Any]


def shard_key(target: str) -> str:
    digest = hashlib.blake2b(target.encode(), digest_size=8).digest()
    return f"{SHARD_PREFIX}{int.from_bytes(digest, 'big') % SHARDS:03d}"


def encode(health: TargetHealth, counter: int, passive_key: str | None = None) -> Entry:
    entry: Entry = {COUNTER: counter}
    blank = TargetHealth(health.target)
    for name, short in _SHORT.items():
        value = getattr(health, name)
        if value != getattr(blank, name):
            entry[short] = value
    if passive_key:
        entry[PASSIVE_KEY] = passive_key
    return entry


def decode(target: str, entry: Entry | None) -> TargetHealth:
    if not entry:
        return TargetHealth(target)
    values: dict[str, Any] = {name: entry[short] for name, short in _SHORT.items() if short in entry}
    for name in ("failures", "successes"):
        values[name] = int(values.get(name, 0))
    for name in ("told_unverified", "told_disagreement"):
        values[name] = bool(values.get(name, False))
    health = TargetHealth(target, **values)
    if health.state == LEGACY_UNCHECKED:
        return TargetHealth(target, **{**values, "state": UNVERIFIED})
    if not health.reached_at and health.checked_at and health.state in REACHED:
        return TargetHealth(target, **{**values, "reached_at": health.checked_at})  # reached then
    return health


def dump(entry: Entry) -> str:
    return json.dumps(entry, separators=(",", ":"), sort_keys=True)


def raw_entries(shard: HealthShard) -> dict[str, str]:
    """The shard's map target -> entry as stored: one JSON string each (one DynamoDB value, not a map of
    ten: items are read and written whole by the checker, and the per-value cost is what counts)."""
    stored = shard.targets
    values = stored.attribute_values if isinstance(stored, MapAttribute) else (stored or {})
    return {str(target): str(raw) for target, raw in values.items()}


def entries(shard: HealthShard) -> dict[str, Entry]:
    return {target: _load(raw) for target, raw in raw_entries(shard).items()}


def _load(raw: str) -> Entry:
    entry = json.loads(raw)
    return entry if isinstance(entry, dict) else {}


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
            keys = sorted({shard_key(t) for t in stale})
            try:
                found = breaker.dynamodb.call(lambda: _read_entries(keys))
            except PynamoDBException:
                found = None
            if found is not None:
                for target in stale:
                    self._cache[target] = (decode(target, found.get(target)).state, now)
        return {t: self._cache[t][0] for t in wanted if t in self._cache}

    def clear(self) -> None:
        self._cache.clear()


def health_of(targets: Collection[str]) -> dict[str, TargetHealth]:
    """The stored health of `targets` (those ever checked), in one batched read of their shards."""
    found = _read_entries(sorted({shard_key(t) for t in targets})) if targets else {}
    return {t: decode(t, found[t]) for t in targets if t in found}


def _read_entries(keys: list[str]) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for shard in HealthShard.batch_get(keys):
        found.update(entries(shard))
    return found


Fold = Callable[[TargetHealth], tuple[TargetHealth, Transition | None]]


def _conflict(error: PynamoDBException) -> bool:
    if breaker.error_code(error) == "ConditionalCheckFailedException":
        time.sleep(random.uniform(0.005, 0.05))  # let the other writer finish, then fold again
        return True
    return False


def _read_shard(key: str) -> HealthShard:
    try:
        return HealthShard.get(key, consistent_read=True)
    except HealthShard.DoesNotExist:
        return HealthShard(key)


def record(target: str, fold: Fold, at: datetime, passive_key: str | None = None) -> Transition | None:
    """Fold one piece of evidence into one target's state (a live call's) and write that entry alone if
    it changed anything worth keeping, conditional on the entry being as read (its counter changes with
    every write): a checker run that rewrote the shard without touching this target does not conflict; one
    that changed it makes us read and fold again. `passive_key` names a live call's leg, so a retried
    webhook counts once."""
    key = shard_key(target)
    for _ in range(WRITE_RETRIES):
        shard = _read_shard(key)
        raw = raw_entries(shard).get(target)
        entry = _load(raw) if raw is not None else None
        if passive_key is not None and entry is not None and entry.get(PASSIVE_KEY) == passive_key:
            return None  # this call's leg was counted already (a retried webhook)
        before = decode(target, entry)
        after, transition = fold(before)
        if not ((entry is None and after != before) or worth_writing(before, after, transition, at)):
            return None
        counter = int(entry.get(COUNTER, 0)) if entry is not None else 0
        kept = passive_key if passive_key is not None else (entry or {}).get(PASSIVE_KEY)
        new = dump(encode(after, counter + 1, kept))
        try:
            if shard.version is None:
                shard.targets = {target: new}  # type: ignore[assignment]
                shard.save()  # only if still no shard: another writer's first entry makes us fold again
            else:
                path = HealthShard.targets[target]
                condition = path == raw if raw is not None else path.does_not_exist()
                shard.update([path.set(new)], condition, add_version_condition=False)  # bumps version
        except (PutError, UpdateError) as error:
            if _conflict(error):
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
) -> Transition | None:
    """Fold one probe result into the target's state; with `passive_key`, a live call's failure instead
    (which counts whether or not the prober ever reached the target)."""
    when = stamp(at)
    if passive_key is not None:
        return record(target, lambda h: observe_live_failure(h, reason, when, thresholds), at, passive_key)
    return record(target, lambda h: judge(h, result, reason, when, thresholds), at)


@dataclass
class ShardOutcome:
    """One shard's part of a checker run: every judged target's state after it, and the news."""

    states: dict[str, str] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    writes: int = 0


ShardFold = Callable[[TargetHealth], tuple[TargetHealth, Transition | None]]


def record_shard(key: str, folds: dict[str, ShardFold], at: datetime, known: HealthShard | None = None) -> ShardOutcome:
    """A checker run's verdicts on the targets of one shard (`folds`: target -> its fold), written as one
    item conditional on the shard's version; entries of targets no rule names any more are dropped. On a
    conflict (a live call or another run wrote in between) the shard is read again and everything folded
    again. `known` is the shard as just read by the scan (absent: read here)."""
    for attempt in range(WRITE_RETRIES):
        shard = known if attempt == 0 and known is not None else _read_shard(key)
        stored = raw_entries(shard)
        outcome = ShardOutcome()
        kept: dict[str, str] = {}
        changed = bool(set(stored) - set(folds))
        for target, fold in folds.items():
            raw = stored.get(target)
            entry = _load(raw) if raw is not None else None
            before = decode(target, entry)
            after, transition = fold(before)
            outcome.states[target] = after.state
            if transition is not None:
                outcome.transitions.append(transition)
            if (entry is None and after != before) or (
                entry is not None and worth_writing(before, after, transition, at)
            ):
                counter = int(entry.get(COUNTER, 0)) if entry is not None else 0
                kept[target] = dump(encode(after, counter + 1, (entry or {}).get(PASSIVE_KEY)))
                changed = True
            elif raw is not None:
                kept[target] = raw
        if not changed:
            return outcome
        shard.targets = kept  # type: ignore[assignment]
        try:
            shard.save()
        except PutError as error:
            if _conflict(error):
                continue
            raise
        outcome.writes = 1
        return outcome
    raise PynamoDBException(f"health shard {key} kept changing under us; gave up after {WRITE_RETRIES} tries")


def worth_writing(before: TargetHealth, after: TargetHealth, transition: Transition | None, at: datetime) -> bool:
    """Whether a stored entry must be rewritten: anything that changes a decision or the news, counters while
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


def shards(consistent: bool = True) -> dict[str, HealthShard]:
    """Every health shard, read in one scan (a few requests however many targets there are)."""
    return {s.target: s for s in HealthShard.scan(consistent_read=consistent) if s.target.startswith(SHARD_PREFIX)}


def _age(since: str, until: str) -> timedelta:
    return datetime.fromisoformat(until.replace("Z", "+00:00")) - datetime.fromisoformat(since.replace("Z", "+00:00"))


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def health_and_last_run() -> tuple[list[TargetHealth], str | None]:
    """Every target's health and the last checker run, in one scan."""
    found: list[TargetHealth] = []
    last: str | None = None
    for item in HealthShard.scan():
        if item.target == RUN_MARKER:
            last = item.checked_at or None
        elif item.target.startswith(SHARD_PREFIX):
            found.extend(decode(target, entry) for target, entry in entries(item).items())
    return found, last


def all_health() -> list[TargetHealth]:
    return health_and_last_run()[0]


def targets_in(keys: Collection[str]) -> dict[str, list[str]]:
    """Not I/O: the shard key -> targets map of `keys` (targets)."""
    grouped: dict[str, list[str]] = {}
    for target in keys:
        grouped.setdefault(shard_key(target), []).append(target)
    return grouped


def mark_run(at: datetime, probed: int) -> None:
    """Record that a checker run finished (what `status` shows as the time of the last check)."""
    marker = HealthShard(RUN_MARKER, reason=f"{probed} targets", checked_at=stamp(at))
    marker.save(add_version_condition=False)


def last_run() -> str | None:
    try:
        return HealthShard.get(RUN_MARKER).checked_at
    except HealthShard.DoesNotExist:
        return None
