"""Not paging twice: a record per notice key (an alarm's name) in the events table under "#alerts" says
what was last sent. Sending is claimed first with a conditional write on the record as it was read, so of
two deliveries of one notification racing each other exactly one pages; the other re-reads, finds the
claim and stays quiet.

A claim is "pending" until SNS took the message. A failed publish gives the claim back, and a claim left
pending longer than CLAIM_SECONDS (its Lambda died) counts as nothing said, so a retry pages. Whenever the
record cannot be read or written, the notice is sent anyway: a page twice is better than none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PynamoDBException

from failover_did.alerts.alarm import Alarm, is_problem
from failover_did.alerts.wording import parse_time
from failover_did.observability import logger
from failover_did.store import breaker, events
from failover_did.store.tables import EventItem

ALERTS_PARTITION = "#alerts"  # events-table partition of the "what was last said" records
ALERT_KIND = "alert"
RECORD_DAYS = 7
# A claim pending longer than the formatter's timeout (30 s in template.yaml) was abandoned; shorter than
# Lambda's first retry delay (about a minute), so that the retry of a failed send pages.
CLAIM_SECONDS = 45
ATTEMPTS = 3  # claims lost to other deliveries before sending anyway


@dataclass(frozen=True)
class AlertRecord:
    """What was last said for a notice key."""

    state: str
    condition: str | None
    at: str = ""
    pending: bool = False  # claimed, not yet confirmed as published


@dataclass(frozen=True)
class Stored:
    """The record as read: `record` is what it says (None when there is none, it expired or its claim was
    abandoned); `detail` and `expires_at` are the item as stored, which the next write is conditioned on."""

    record: AlertRecord | None
    detail: dict[str, Any] | None = None
    expires_at: int | None = None


Decide = Callable[[AlertRecord | None, bool], bool]  # (what was last said, whether it could be read) -> send?


def should_publish(alarm: Alarm, condition: str | None, prior: AlertRecord | None, known: bool = True) -> bool:
    """Whether to send `alarm` given what was last said for it (`prior`; `known` False when that could
    not be read). A problem is sent unless the same condition was already sent and not resolved since; a
    resolution is sent when a problem was said (or, with no record, when CloudWatch says it left ALARM)."""
    if is_problem(alarm):
        return not (
            known
            and prior is not None
            and is_problem(alarm, prior.state)
            and condition is not None
            and prior.condition == condition
        )
    if known and prior is not None:
        return is_problem(alarm, prior.state)
    return is_problem(alarm, alarm.old_state)


def read(key: str, now: datetime) -> Stored:
    """The record for `key` (a Query: the formatter's policy has no GetItem)."""
    for item in EventItem.query(ALERTS_PARTITION, EventItem.sk == key, consistent_read=True):
        detail = dict(item.detail or {})
        expires_at = None if item.expires_at is None else int(item.expires_at)
        if expires_at is not None and expires_at <= now.timestamp():
            return Stored(None, detail, expires_at)  # past its TTL, not yet swept by DynamoDB
        condition = detail.get("condition")
        record = AlertRecord(
            str(detail.get("state") or ""),
            None if condition is None else str(condition),
            str(detail.get("at") or ""),
            bool(detail.get("pending")),
        )
        if not record.state:
            return Stored(None, detail, expires_at)  # a claim given back: nothing said
        claimed = parse_time(record.at)
        if record.pending and (claimed is None or now - claimed > timedelta(seconds=CLAIM_SECONDS)):
            return Stored(None, detail, expires_at)  # its sender died between claim and publish
        return Stored(record, detail, expires_at)
    return Stored(None)


class _Lost(Exception):
    """Another delivery changed the record between our read and our write."""


def send_once(
    key: str, state: str, condition: str | None, decide: Decide, send: Callable[[], str], now: datetime
) -> str | None:
    """Send (calling `send`, which returns the message id) unless `decide` says what was last said for
    `key` makes it a repeat. Returns the message id, or None for a repeat."""
    for _ in range(ATTEMPTS):
        try:
            stored = read(key, now)
        except Exception as error:
            _log("alert record not read", key, error)
            if not decide(None, False):
                return None
            message_id = send()
            _write(key, _detail(state, condition, now, pending=False), now, expected=None, conditional=False)
            return message_id
        if not decide(stored.record, True):
            return None
        claim = _detail(state, condition, now, pending=True)
        try:
            _put(key, claim, now, stored.detail)
        except _Lost:
            continue
        except Exception as error:
            _log("alert record not claimed", key, error)
            return send()
        try:
            message_id = send()
        except Exception:
            _give_back(key, claim, stored)
            raise
        _write(key, {**claim, "pending": False}, now, expected=claim, conditional=True)
        return message_id
    logger.warning("alert record kept changing; sending anyway", extra={"key": key})
    return send()


def _detail(state: str, condition: str | None, now: datetime, pending: bool) -> dict[str, Any]:
    return {"state": state, "condition": condition, "at": events.iso(now), "pending": pending}


def _item(key: str, detail: dict[str, Any], expires_at: int) -> EventItem:
    return EventItem(ALERTS_PARTITION, key, kind=ALERT_KIND, detail=detail, expires_at=expires_at)


def _expiry(now: datetime) -> int:
    return int((now + timedelta(days=RECORD_DAYS)).timestamp())


def _put(key: str, detail: dict[str, Any], now: datetime, expected: dict[str, Any] | None) -> None:
    """Write `detail` only if the record is still `expected` (None: there is none)."""
    condition = EventItem.sk.does_not_exist() if expected is None else EventItem.detail == expected
    try:
        _item(key, detail, _expiry(now)).save(condition=condition)
    except PynamoDBException as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            raise _Lost from error
        raise


def _write(key: str, detail: dict[str, Any], now: datetime, expected: dict[str, Any] | None, conditional: bool) -> None:
    """A write after the message went out: failing it costs at most a repeated page later, so it only logs."""
    try:
        if conditional:
            _put(key, detail, now, expected)
        else:
            _item(key, detail, _expiry(now)).save()
    except _Lost:
        pass  # a later delivery took the record over: its word stands
    except Exception as error:
        _log("alert record not written", key, error)


def _give_back(key: str, claim: dict[str, Any], stored: Stored) -> None:
    """The publish failed: put the record back as it was (with none, a record of nothing said: the policy
    grants PutItem, not DeleteItem), so that Lambda's retry is not taken for a repeat. If this fails too,
    the claim is abandoned and counts as nothing said after CLAIM_SECONDS."""
    detail = (
        stored.detail if stored.detail is not None else {"state": "", "condition": None, "at": "", "pending": False}
    )
    expires_at = stored.expires_at if stored.expires_at is not None else _expiry(datetime.now(UTC))
    try:
        _item(key, detail, expires_at).save(condition=EventItem.detail == claim)
    except Exception as error:
        _log("alert claim not given back", key, error)


def _log(message: str, key: str, error: Exception) -> None:
    logger.warning(message, extra={"key": key, "error": f"{type(error).__name__}: {error}"})
