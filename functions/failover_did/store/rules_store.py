"""Rules in DynamoDB: a cached reader for the webhook, and locked writes for the operator's tools."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.exceptions import DeleteError, PutError, PynamoDBException

from failover_did.rules.model import Rule
from failover_did.store import breaker
from failover_did.store.tables import RuleItem

CACHE_SECONDS = 10.0
FALLBACK_KEY_BYTES = 24  # secrets.token_urlsafe(24): 32 URL-safe characters, 192 random bits


class StoreUnavailable(Exception):
    """DynamoDB could not answer and there is no earlier answer to fall back on."""


class ConcurrentEdit(Exception):
    """Someone else changed the rule between our read and our write."""


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


def load_rule(number: str) -> Rule | None:
    try:
        item = RuleItem.get(number, consistent_read=False)
    except RuleItem.DoesNotExist:
        return None
    return Rule.from_doc(number, item.rule)


# --- the operator's side: list, apply, delete, with optimistic locking ---------------------------


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


def new_fallback_key() -> str:
    return secrets.token_urlsafe(FALLBACK_KEY_BYTES)


def _stored(item: RuleItem) -> StoredRule:
    return StoredRule(
        Rule.from_doc(item.number, item.rule), int(item.version or 0), item.updated_at, item.fallback_key or None
    )


def all_rules() -> Iterator[StoredRule]:
    for item in RuleItem.scan():
        yield _stored(item)


def get_stored(number: str) -> StoredRule | None:
    try:
        item = RuleItem.get(number, consistent_read=True)
    except RuleItem.DoesNotExist:
        return None
    return _stored(item)


def apply_rules(rules: Mapping[str, Rule], *, prune: bool = False) -> list[Change]:
    """Write each rule that differs from the stored one. A write is conditional on the version read,
    so an edit made by someone else in between is refused (ConcurrentEdit), never overwritten.
    A number written without a fallback key gets one in the same write; a key once set is kept."""
    stored = {item.number: item for item in RuleItem.scan(consistent_read=True)}
    changes: list[Change] = []
    for number, rule in sorted(rules.items()):
        doc = rule.to_doc()
        item = stored.get(number)
        if item is not None and item.rule == doc:
            changes.append(Change(number, "unchanged", int(item.version or 0), item.fallback_key or None))
            continue
        if item is None:
            item = RuleItem(number)
        item.rule = doc
        item.updated_at = datetime.now(UTC)
        item.fallback_key = item.fallback_key or new_fallback_key()
        action = "changed" if item.version else "added"
        _save(item)
        changes.append(Change(number, action, int(item.version or 0), item.fallback_key))
    for number, item in sorted(stored.items()):
        if number in rules:
            continue
        if prune:
            _delete(item)
            changes.append(Change(number, "deleted", None, item.fallback_key or None))
        else:
            changes.append(Change(number, "kept", int(item.version or 0), item.fallback_key or None))
    return changes


def ensure_fallback_key(number: str, version: int) -> str:
    """Give a stored rule that has none (written before fallbacks existed) its fallback key, in a write
    conditional on `version`, the version the caller read; a key already set is returned as it is."""
    try:
        item = RuleItem.get(number, consistent_read=True)
    except RuleItem.DoesNotExist:
        raise ConcurrentEdit(f"{number} was deleted by someone else while this ran; run it again") from None
    if int(item.version or 0) != version:
        raise ConcurrentEdit(f"{number} was changed by someone else while this ran; run it again")
    if not item.fallback_key:
        item.fallback_key = new_fallback_key()
        _save(item)
    return str(item.fallback_key)


def delete_rule(number: str) -> bool:
    return delete_stored(number) is not None


def delete_stored(number: str) -> StoredRule | None:
    """Delete a number's rule; returns what was deleted (its fallback key included), or None."""
    try:
        item = RuleItem.get(number, consistent_read=True)
    except RuleItem.DoesNotExist:
        return None
    _delete(item)
    return _stored(item)


def _save(item: RuleItem) -> None:
    expected = item.version  # the version read; PynamoDB bumps it when the write succeeds
    try:
        item.save()
    except PutError as error:
        if breaker.error_code(error) != "ConditionalCheckFailedException":
            raise
        if not _landed_already(item, expected):
            raise ConcurrentEdit(f"{item.number} was changed by someone else while this ran; run it again") from error


def _landed_already(item: RuleItem, expected: int | None) -> bool:
    """A write whose answer timed out may have landed; the retry then fails its own version check. If the
    stored item is ours (our rule, one version on), the write succeeded."""
    try:
        stored = RuleItem.get(item.number, consistent_read=True)
    except RuleItem.DoesNotExist:
        return False
    ours = stored.rule == item.rule and stored.fallback_key == item.fallback_key
    if ours and int(stored.version or 0) == int(expected or 0) + 1:
        item.version = stored.version
        return True
    return False


def _delete(item: RuleItem) -> None:
    try:
        item.delete()
    except DeleteError as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            raise ConcurrentEdit(f"{item.number} was changed by someone else while this ran; run it again") from error
        raise
