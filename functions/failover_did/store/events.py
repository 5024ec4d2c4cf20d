"""The event log: per-number records of what happened, kept for EVENT_RETENTION_DAYS (DynamoDB TTL)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError

from failover_did.settings import settings
from failover_did.store import breaker
from failover_did.store.tables import EventItem


@dataclass(frozen=True)
class Event:
    number: str
    at: str  # ISO time, UTC
    kind: str  # failover | unreachable | recovered | rule-changed
    detail: dict[str, Any]


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retention_days() -> int:
    """How long events (and the call log) are kept."""
    return settings().event_retention_days


def event_item(number: str, kind: str, at: datetime, detail: dict[str, Any], event_id: str) -> EventItem:
    days = retention_days()
    return EventItem(
        number,
        f"{iso(at)}#{event_id}",
        kind=kind,
        detail=detail,
        expires_at=int((at + timedelta(days=days)).timestamp()),
    )


def record(number: str, kind: str, at: datetime, detail: dict[str, Any], event_id: str) -> bool:
    """Write an event once: the same `event_id` at the same time (a retry) is not written twice.
    Returns False when it was already there."""
    item = event_item(number, kind, at, detail, event_id)
    try:
        item.save(condition=EventItem.sk.does_not_exist())
    except PutError as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# Event sort keys start with an ISO time ("2026-..."); other items in the table ("count#...", and the
# alert records under "#alerts") sort outside this range.
_LAST = "9999"


def events_of(number: str, since: datetime | None = None) -> Iterator[Event]:
    condition = EventItem.sk.between(iso(since) if since else "0", _LAST)
    for item in EventItem.query(number, range_key_condition=condition):
        yield Event(item.number, item.sk.split("#", 1)[0], item.kind, dict(item.detail))


def all_events(since: datetime | None = None, kind: str | None = None) -> Iterator[Event]:
    condition = EventItem.sk.between(iso(since) if since else "0", _LAST) & EventItem.number.startswith("+")
    if kind is not None:
        condition &= EventItem.kind == kind
    for item in EventItem.scan(filter_condition=condition):
        yield Event(item.number, item.sk.split("#", 1)[0], item.kind, dict(item.detail))


def last_failovers(since: datetime, numbers: Collection[str] | None = None) -> dict[str, Event]:
    """Each number's latest failover since `since`: one query for a single number, else one scan of the
    table (paged by DynamoDB), never a request per number."""
    wanted = None if numbers is None else set(numbers)
    if wanted is not None and len(wanted) == 1:
        found: Iterator[Event] = events_of(next(iter(wanted)), since)
    else:
        found = all_events(since, kind="failover")
    latest: dict[str, Event] = {}
    for event in found:
        if event.kind != "failover" or (wanted is not None and event.number not in wanted):
            continue
        if event.number not in latest or event.at >= latest[event.number].at:
            latest[event.number] = event
    return latest
