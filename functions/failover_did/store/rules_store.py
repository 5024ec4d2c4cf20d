"""Rules in DynamoDB: a cached reader for the webhook, and the operator's writes, atomic against each other.

Every `apply` and `delete` reads the rules-set item (its version) before the rules, and writes its changes in
one transaction with the rules-set version bumped on the condition that it is still the one read: of two
applies that read the same rules, the second is refused and writes nothing, so no check made on what was
read (a loop, a number already taken) can be undone by a concurrent write. Each rule's own version is a
condition too. An apply with more writes than one transaction holds takes the rules set's lock instead
(a conditional write with an expiry), writes in transactions that each check it still holds the lock, and
releases it with the version bump."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from failover_did.rules.model import Rule
from failover_did.store import breaker
from failover_did.store.tables import RULES_SET_KEY, RuleItem, RulesSetItem, aws_region

CACHE_SECONDS = 10.0
FALLBACK_KEY_BYTES = 24  # secrets.token_urlsafe(24): 32 URL-safe characters, 192 random bits


class StoreUnavailable(Exception):
    """DynamoDB could not answer and there is no earlier answer to fall back on."""


class ConcurrentEdit(Exception):
    """Someone else changed the rules between our read and our write; nothing of ours was written
    (or, for a locked apply, `written` of the changes were)."""


RULES_CHANGED = "the rules were changed by someone else while this ran; run it again"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
LOCK_SECONDS = 120  # how long a large apply's lock lasts if its holder dies


@dataclass(frozen=True)
class Lookup:
    rule: Rule | None
    stale: bool  # served from the last known good copy because DynamoDB failed


class RuleReader:
    """Reads a number's rule at most once per `ttl` seconds per warm container; when DynamoDB fails,
    the last rule it returned (of any age) is served so the caller still gets through."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[Rule | None, float]] = {}

    def get(self, number: str) -> Lookup:
        cached = self._cache.get(number)
        now = self._clock()
        if cached is not None and now - cached[1] < self._ttl:
            return Lookup(cached[0], stale=False)
        try:
            rule = breaker.dynamodb.call(lambda: load_rule(number))
        except PynamoDBException as error:
            if cached is None:
                raise StoreUnavailable(str(error)) from error
            return Lookup(cached[0], stale=True)
        self._cache[number] = (rule, now)
        return Lookup(rule, stale=False)

    def clear(self) -> None:
        self._cache.clear()


def is_rule_key(number: str) -> bool:
    return not number.startswith("#")


def load_rule(number: str) -> Rule | None:
    if not is_rule_key(number):
        return None
    try:
        item = RuleItem.get(number, consistent_read=False)
    except RuleItem.DoesNotExist:
        return None
    return Rule.from_doc(number, item.rule)


# --- the operator's side: list, apply, delete, atomic against each other ------------------------


@dataclass(frozen=True)
class StoredRule:
    rule: Rule
    version: int
    updated_at: datetime | None
    fallback_key: str | None = None  # the unguessable part of the number's static fallback URL


@dataclass(frozen=True)
class Change:
    number: str
    action: str  # "added" | "changed" | "unchanged" | "deleted" | "kept"
    version: int | None
    fallback_key: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The rules as one apply read them: the rules-set version first, then every rule."""

    version: int | None  # None: no apply has written the rules-set item yet
    items: dict[str, RuleItem] = field(default_factory=dict)

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(self.items)


def new_fallback_key() -> str:
    return secrets.token_urlsafe(FALLBACK_KEY_BYTES)


def _stored(item: RuleItem) -> StoredRule:
    return StoredRule(
        Rule.from_doc(item.number, item.rule), int(item.version or 0), item.updated_at, item.fallback_key or None
    )


def all_rules() -> Iterator[StoredRule]:
    for item in RuleItem.scan():
        if is_rule_key(item.number):
            yield _stored(item)


def get_stored(number: str) -> StoredRule | None:
    if not is_rule_key(number):
        return None
    try:
        item = RuleItem.get(number, consistent_read=True)
    except RuleItem.DoesNotExist:
        return None
    return _stored(item)


def stored_of(numbers: Sequence[str]) -> dict[str, StoredRule]:
    """The stored rules of `numbers` (consistent reads); a number with no rule is absent."""
    keys = sorted({n for n in numbers if is_rule_key(n)})
    return {item.number: _stored(item) for item in RuleItem.batch_get(keys, consistent_read=True)}


def read_snapshot() -> Snapshot:
    """The rules-set version, then the rules: a write by anyone after the first read makes ours fail."""
    try:
        head = RulesSetItem.get(RULES_SET_KEY, consistent_read=True)
    except RulesSetItem.DoesNotExist:
        head = None
    items = {item.number: item for item in RuleItem.scan(consistent_read=True) if is_rule_key(item.number)}
    return Snapshot(None if head is None else int(head.version or 0), items)


@dataclass
class _Plan:
    """The writes of one apply, each with the change it reports."""

    saves: list[RuleItem] = field(default_factory=list)
    deletes: list[RuleItem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.saves) + len(self.deletes)


def apply_rules(rules: Mapping[str, Rule], *, prune: bool = False, snapshot: Snapshot | None = None) -> list[Change]:
    """Write each rule that differs from the stored one (and, with `prune`, delete stored numbers `rules`
    lacks), atomically against every other apply and delete: `snapshot` is what the caller read and judged
    the rules against (read now when not given); if anyone wrote the rules since, ConcurrentEdit and
    nothing written. A number written without a fallback key gets one in the same write; a key once set
    is kept (a rule stored without one gets it in this apply's transaction)."""
    snapshot = snapshot if snapshot is not None else read_snapshot()
    plan = _plan(rules, snapshot, prune)
    if plan.size == 0:
        return _ordered(plan.changes)
    token = secrets.token_hex(16)
    if plan.size + 1 <= MAX_TRANSACTION_ITEMS:
        _commit(snapshot, token, plan.saves, plan.deletes)
    else:
        _commit_locked(snapshot, token, plan)
    return _ordered(_with_versions(plan))


def _plan(rules: Mapping[str, Rule], snapshot: Snapshot, prune: bool) -> _Plan:
    plan = _Plan()
    now = datetime.now(UTC)
    for number, rule in sorted(rules.items()):
        doc = rule.to_doc()
        old = snapshot.items.get(number)
        if old is not None and old.rule == doc and old.fallback_key:
            plan.changes.append(Change(number, "unchanged", int(old.version or 0), old.fallback_key))
            continue
        action = "added" if old is None else "unchanged" if old.rule == doc else "changed"
        key = (old.fallback_key if old is not None else None) or new_fallback_key()
        item = RuleItem(number, rule=doc, updated_at=now, fallback_key=key)
        if old is not None and old.version is not None:
            item.version = old.version
        plan.saves.append(item)
        plan.changes.append(Change(number, action, None, key))
    for number, old in sorted(snapshot.items.items()):
        if number in rules:
            continue
        if prune:
            plan.deletes.append(old)
            plan.changes.append(Change(number, "deleted", None, old.fallback_key or None))
        else:
            plan.changes.append(Change(number, "kept", int(old.version or 0), old.fallback_key or None))
    return plan


def _with_versions(plan: _Plan) -> list[Change]:
    """The changes with the versions their writes gave (PynamoDB bumps each saved item's version)."""
    written = {item.number: int(item.version or 0) for item in plan.saves}
    return [
        Change(c.number, c.action, written.get(c.number, c.version), c.fallback_key) if c.number in written else c
        for c in plan.changes
    ]


def _ordered(changes: list[Change]) -> list[Change]:
    """Numbers in the file first (sorted), then the stored ones it lacks (sorted): the report's order."""
    first = [c for c in changes if c.action not in ("deleted", "kept")]
    rest = [c for c in changes if c.action in ("deleted", "kept")]
    return first + rest


def delete_rule(number: str) -> bool:
    return delete_stored(number) is not None


def delete_stored(number: str) -> StoredRule | None:
    """Delete a number's rule, atomically against every apply; returns what was deleted (its fallback key
    included), or None when there was no rule."""
    if not is_rule_key(number):
        return None
    snapshot = Snapshot(_version_now())
    try:
        item = RuleItem.get(number, consistent_read=True)
    except RuleItem.DoesNotExist:
        return None
    _commit(snapshot, secrets.token_hex(16), [], [item])
    return _stored(item)


def _head() -> RulesSetItem | None:
    try:
        return RulesSetItem.get(RULES_SET_KEY, consistent_read=True)
    except RulesSetItem.DoesNotExist:
        return None


def _version_now() -> int | None:
    head = _head()
    return None if head is None else int(head.version or 0)


def _connection() -> Connection:
    meta = RuleItem.Meta
    return _connection_to(
        aws_region(),
        getattr(meta, "host", None),
        meta.connect_timeout_seconds,
        meta.read_timeout_seconds,
        meta.max_retry_attempts,
        os.environ.get("AWS_ENDPOINT_URL"),
    )


@lru_cache(maxsize=4)
def _connection_to(
    region: str, host: str | None, connect: float, read: float, retries: int, endpoint: str | None
) -> Connection:
    """One connection per process and settings (`endpoint` is read by botocore when the client is made):
    each new one builds a botocore client, tens of milliseconds of CPU per apply."""
    return Connection(
        region=region,
        host=host,
        connect_timeout_seconds=connect,
        read_timeout_seconds=read,
        max_retry_attempts=retries,
    )


def _head_item(snapshot: Snapshot, token: str) -> RulesSetItem:
    """The rules-set item to write: at the version read, so the write is conditional on it."""
    head = RulesSetItem(RULES_SET_KEY, updated_at=datetime.now(UTC), last_apply=token)
    if snapshot.version is not None:
        head.version = snapshot.version
    return head


def _unlocked(now: float) -> Condition:
    free: Condition = RulesSetItem.lock_owner.does_not_exist() | (RulesSetItem.lock_expires < now)
    return free


def _commit(snapshot: Snapshot, token: str, saves: list[RuleItem], deletes: list[RuleItem]) -> None:
    """One transaction: the rules-set version bump (on the version read, with no live lock) and the writes,
    each on the version read. The token makes a retried request idempotent and marks the bump as ours."""
    head = _head_item(snapshot, token)
    try:
        with TransactWrite(connection=_connection(), client_request_token=token) as tx:
            for item in deletes:
                tx.delete(item)
            tx.save(head, condition=_unlocked(time.time()))
            for item in saves:
                tx.save(item)
    except TransactWriteError as error:
        if _landed(token, snapshot.version):
            for item in saves:  # a retry of our own landed write was refused: the first try succeeded
                item.version = int(item.version or 0) + 1
            return
        keys = [item.number for item in deletes] + [RULES_SET_KEY] + [item.number for item in saves]
        raise _refusal(error, keys) from error


def _landed(token: str, read_version: int | None) -> bool:
    """Whether the rules-set bump made with `token` is stored (a write whose answer was lost)."""
    try:
        head = _head()
    except PynamoDBException:
        return False
    if head is None:
        return False
    return head.last_apply == token and int(head.version or 0) == int(read_version or 0) + 1


def _chunk_landed(chunk: list[tuple[str, RuleItem]]) -> bool:
    """Whether a locked apply's transaction is stored (its answer was lost): each save there, one version on,
    each delete gone."""
    try:
        now = {item.number: item for item in RuleItem.batch_get([i.number for _, i in chunk], consistent_read=True)}
    except PynamoDBException:
        return False
    for kind, item in chunk:
        there = now.get(item.number)
        if kind == "delete" and there is not None:
            return False
        if kind == "save" and (
            there is None
            or (there.rule, there.fallback_key) != (item.rule, item.fallback_key)
            or int(there.version or 0) != int(item.version or 0) + 1
        ):
            return False
    return True


def _refusal(error: TransactWriteError, keys: list[str], mine: str | None = None) -> Exception:
    """What a refused transaction means for the operator; anything but a failed condition is re-raised.
    `mine`: the lock this apply holds, if it holds one."""
    reasons = error.cancellation_reasons or []
    failed = [key for key, why in zip(keys, reasons, strict=False) if why and why.code == "ConditionalCheckFailed"]
    if not failed:
        if any(why and why.code == "TransactionConflict" for why in reasons):  # another write on the same items
            return ConcurrentEdit(RULES_CHANGED)
        return error
    locked = _lock_refusal(mine)
    if locked is not None:
        return locked
    numbers = [key for key in failed if key != RULES_SET_KEY]
    if numbers and RULES_SET_KEY not in failed:
        return ConcurrentEdit(f"{numbers[0]} was changed by someone else while this ran; run it again")
    return ConcurrentEdit(RULES_CHANGED)


def _commit_locked(snapshot: Snapshot, token: str, plan: _Plan) -> None:
    """An apply too large for one transaction: take the lock (bumping the version, so every apply that read
    the rules before fails), write in transactions that each check the lock is still ours, release it with
    another bump. If this dies half-way, the lock expires after LOCK_SECONDS and the next apply reads and
    judges what was written."""
    now = time.time()
    head = _head_item(snapshot, token)
    head.lock_owner, head.lock_expires = token, int(now + LOCK_SECONDS)
    try:
        head.save(condition=_unlocked(now))
    except PynamoDBException as error:
        if breaker.error_code(error) != "ConditionalCheckFailedException":
            raise
        if not _landed(token, snapshot.version):
            raise (_lock_refusal() or ConcurrentEdit(RULES_CHANGED)) from error
        head.version = int(snapshot.version or 0) + 1
    writes = [("delete", item) for item in plan.deletes] + [("save", item) for item in plan.saves]
    batch = MAX_TRANSACTION_ITEMS - 1
    done = 0
    for start in range(0, len(writes), batch):
        chunk = writes[start : start + batch]
        chunk_token = f"{token[:24]}{start:08x}"
        try:
            with TransactWrite(connection=_connection(), client_request_token=chunk_token) as tx:
                tx.condition_check(RulesSetItem, RULES_SET_KEY, condition=RulesSetItem.lock_owner == token)
                for kind, item in chunk:
                    if kind == "delete":
                        tx.delete(item)
                    else:
                        tx.save(item)
        except TransactWriteError as error:
            if _chunk_landed(chunk):
                for kind, item in chunk:
                    if kind == "save":
                        item.version = int(item.version or 0) + 1
                done += len(chunk)
                continue
            keys = [RULES_SET_KEY] + [item.number for kind, item in chunk if kind == "delete"]
            keys += [item.number for kind, item in chunk if kind == "save"]
            refusal = _refusal(error, keys, mine=token)
            if isinstance(refusal, ConcurrentEdit):
                refusal = ConcurrentEdit(f"{refusal} ({done} of {len(writes)} changes were written)")
            _release(head, token, quietly=True)
            raise refusal from error
        done += len(chunk)
    _release(head, token, quietly=False)


def _release(head: RulesSetItem, token: str, *, quietly: bool) -> None:
    """Clear our lock and bump the version once more; `quietly` after a failure (the lock then expires)."""
    head.lock_owner = None
    head.lock_expires = None
    head.updated_at = datetime.now(UTC)
    try:
        head.save(condition=RulesSetItem.lock_owner == token)
    except PynamoDBException:
        if not quietly:
            raise


def _lock_refusal(mine: str | None = None) -> ConcurrentEdit | None:
    """The refusal to give when another apply holds the lock now, else None."""
    head = _head()
    if head is not None and head.lock_owner not in (None, mine) and float(head.lock_expires or 0) >= time.time():
        until = datetime.fromtimestamp(float(head.lock_expires or 0), UTC).strftime("%H:%M:%SZ")
        return ConcurrentEdit(f"another apply is writing the rules (its lock lasts until {until}); run it again then")
    return None
