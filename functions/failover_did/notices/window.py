"""The digest window: at most one notice per number per WINDOW_SECONDS, whatever an outage does.

One item per number in the events table (partition "#missed-calls", sort key the number) says when the
number's window closes and which missed calls arrived while it was open. Every change is a conditional
write on the item as it was read, so of two writers racing exactly one wins; the loser re-reads.

- The first missed call of a number (no window, or a closed and empty one) opens a window and is notified
  at once.
- A missed call while the window is open is only added to it.
- When the window has closed with calls in it, whoever comes first - the scheduled flush or the number's
  next missed call - empties it, sends the one digest and opens the next window, so a long outage sends
  one digest per window.
- A call SID already in the window is a repeat and is dropped.

A claim is made before publishing. The call notified at once stays in the window until its notice is
confirmed sent; a digest's calls, when SNS refuses the digest, are put back. Either way the next digest
carries what was not sent: a failed publish, or a sender dying mid-way, delays a notice and never drops it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pynamodb.exceptions import PynamoDBException

from failover_did.alerts.wording import parse_time
from failover_did.notices.wording import TRANSCRIPT_KEPT, Missed
from failover_did.observability import logger
from failover_did.store import breaker, events
from failover_did.store.tables import EventItem

PARTITION = "#missed-calls"  # events-table partition of the digest windows
KIND = "missed-window"
WINDOW_SECONDS = 300
KEPT_CALLS = 20  # calls kept for the digest's email; the count goes on
KEPT_SIDS = 100  # call SIDs remembered to drop a repeated notice of one call
RECORD_DAYS = 2
ATTEMPTS = 5  # writes lost to other writers before giving up


@dataclass(frozen=True)
class Window:
    opened: str  # ISO: the first notice's time, or the last digest's
    until: str  # ISO: when it closes
    count: int = 0  # missed calls waiting for the digest
    calls: tuple[Missed, ...] = ()  # the last KEPT_CALLS of them
    sids: tuple[str, ...] = ()
    first: str = ""  # the call notified at once when the window opened (its transcript may follow)

    def closed(self, now: datetime) -> bool:
        until = parse_time(self.until)
        return until is None or until <= now

    def to_detail(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "until": self.until,
            "count": self.count,
            "calls": [asdict(c) for c in self.calls],
            "sids": list(self.sids),
            "first": self.first,
        }

    @classmethod
    def of_detail(cls, detail: dict[str, Any]) -> Window:
        calls = tuple(
            Missed(
                str(c.get("call_sid", "")),
                str(c.get("caller", "")),
                str(c.get("started", "")),
                str(c.get("ending", "")),
                c.get("recording_url") or None,
                c.get("transcript") or None,
            )
            for c in detail.get("calls") or []
            if isinstance(c, dict)
        )
        count = detail.get("count")
        return cls(
            str(detail.get("opened") or ""),
            str(detail.get("until") or ""),
            count if isinstance(count, int) and count >= 0 else len(calls),
            calls,
            tuple(str(s) for s in detail.get("sids") or []),
            str(detail.get("first") or ""),
        )


@dataclass(frozen=True)
class Stored:
    window: Window | None
    detail: dict[str, Any] | None = None  # the item's detail as read: the next write is conditioned on it


@dataclass(frozen=True)
class Decision:
    """What to send for one missed call, the claim on the window already made."""

    action: Literal["notify", "digest", "accumulated", "repeat"]
    calls: tuple[Missed, ...] = field(default_factory=tuple)  # a digest's calls
    total: int = 0
    since: str = ""
    claimed: bool = False  # "notify": the call waits in the window until `delivered`


class Lost(Exception):
    """Another writer changed the window between our read and our write."""


def read(number: str) -> Stored:
    for item in EventItem.query(PARTITION, EventItem.sk == number, consistent_read=True):
        detail = dict(item.detail or {})
        return Stored(Window.of_detail(detail), detail)
    return Stored(None)


def numbers() -> list[str]:
    """Every number with a window (one Query on one partition)."""
    return [item.sk for item in EventItem.query(PARTITION)]


def put(number: str, window: Window, now: datetime, expected: dict[str, Any] | None) -> None:
    """Write `window` only if the item is still `expected` (None: there is none)."""
    condition = EventItem.sk.does_not_exist() if expected is None else EventItem.detail == expected
    item = EventItem(
        PARTITION,
        number,
        kind=KIND,
        detail=window.to_detail(),
        expires_at=int((now + timedelta(days=RECORD_DAYS)).timestamp()),
    )
    try:
        item.save(condition=condition)
    except PynamoDBException as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            raise Lost from error
        raise


def fresh(now: datetime, sids: tuple[str, ...] = ()) -> Window:
    return Window(events.iso(now), events.iso(now + timedelta(seconds=WINDOW_SECONDS)), 0, (), sids[-KEPT_SIDS:])


def decide(number: str, missed: Missed, now: datetime) -> Decision:
    """Claim what to do about one missed call of `number`. Raises PynamoDBException when the table cannot
    be read or written (the caller then notifies at once: twice is better than never)."""
    for _ in range(ATTEMPTS):
        stored = read(number)
        window = stored.window
        if window is not None and missed.call_sid in window.sids:
            return Decision("repeat")
        sids = (*(window.sids if window else ()), missed.call_sid)
        if window is None or window.closed(now):
            overdue = window is not None and window.count > 0
            opened = fresh(now, sids)
            if not overdue:  # kept in the window until its notice is confirmed sent (see `delivered`)
                opened = replace(opened, count=1, calls=(missed,), first=missed.call_sid)
            try:
                put(number, opened, now, stored.detail)
            except Lost:
                continue
            if window is not None and overdue:  # its digest is overdue: this call goes with it
                calls = (*window.calls, missed)[-KEPT_CALLS:]
                return Decision("digest", calls, window.count + 1, window.opened)
            return Decision("notify", claimed=True)
        grown = Window(
            window.opened, window.until, window.count + 1, (*window.calls, missed)[-KEPT_CALLS:], sids[-KEPT_SIDS:]
        )
        try:
            put(number, grown, now, stored.detail)
        except Lost:
            continue
        return Decision("accumulated")
    logger.warning("digest window kept changing; notifying at once", extra={"number": number})
    return Decision("notify")


def take_due(number: str, now: datetime) -> Decision | None:
    """Empty a closed window that holds calls and open the next; the digest to send, or None."""
    for _ in range(ATTEMPTS):
        stored = read(number)
        window = stored.window
        if window is None or not window.closed(now) or window.count == 0:
            return None
        try:
            put(number, fresh(now, window.sids), now, stored.detail)
        except Lost:
            continue
        return Decision("digest", window.calls, window.count, window.opened)
    return None


def delivered(number: str, call_sid: str, now: datetime) -> None:
    """The call notified at once went out: take it out of the window. Until then it waits there, so that
    if the sender dies between its claim and SNS taking the message, the window's digest still tells."""
    for _ in range(ATTEMPTS):
        stored = read(number)
        window = stored.window
        if window is None or not any(c.call_sid == call_sid for c in window.calls):
            return
        calls = tuple(c for c in window.calls if c.call_sid != call_sid)
        try:
            put(number, replace(window, count=max(window.count - 1, 0), calls=calls), now, stored.detail)
        except Lost:
            continue
        return


def transcribed(number: str, call_sid: str, transcript: str, now: datetime) -> bool:
    """A call's transcript arrived. Kept with the call when it waits for a digest; True when the call was
    the one notified at once and its follow-up is now claimed (to be sent by the caller, exactly once)."""
    for _ in range(ATTEMPTS):
        stored = read(number)
        window = stored.window
        if window is None:
            return False
        if any(c.call_sid == call_sid for c in window.calls):
            calls = tuple(
                replace(c, transcript=transcript[:TRANSCRIPT_KEPT]) if c.call_sid == call_sid else c
                for c in window.calls
            )
            try:
                put(number, replace(window, calls=calls), now, stored.detail)
            except Lost:
                continue
            return False
        if window.first != call_sid:
            return False
        try:
            put(number, replace(window, first=""), now, stored.detail)
        except Lost:
            continue
        return True
    return False


def put_back(number: str, calls: tuple[Missed, ...], count: int, now: datetime) -> None:
    """A publish failed after its claim: return its calls to the window, for the next flush to send. If
    even that fails, the calls are logged (the call log still has them)."""
    for _ in range(ATTEMPTS):
        try:
            stored = read(number)
            window = stored.window or fresh(now)
            back = Window(
                window.opened,
                window.until,
                window.count + count,
                (*calls, *window.calls)[-KEPT_CALLS:],
                window.sids,
            )
            put(number, back, now, stored.detail)
            return
        except Lost:
            continue
        except Exception as error:
            logger.error("missed calls not put back for the digest", extra={"number": number, "error": str(error)})
            break
    logger.error("missed calls lost from the digest", extra={"number": number, "calls": [c.call_sid for c in calls]})
