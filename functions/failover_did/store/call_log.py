"""The call log: one item per call (keyed by CallSid), written by the call's webhooks, read by `calls`.

Writes per call: none on /voice (the caller waits on it; only a call to a number without a rule is
written there), one per Dial action, one on the Record action, one or two on the status callback, one or
two on the recording callback, one on the transcription callback. The first Dial action makes the item
with a PutItem that only lands where there is none (else it is an UpdateItem like the rest); every write
is idempotent under Twilio's retries (fields the first request set are kept with `if_not_exists`; a dial
is stored under its hop; a transcript is stored once, conditionally). The call
is "closed" (its outcome decided) by one conditional write, so whichever webhook closes it is the only
one that sees it close: that one sends the missed-call notice.

A voicemail's end waits for its recording: when the status callback says the call ended after the
caller reached a final message that records, the call stays open until the recording (or Twilio's word
that there is none) arrives, or RECORDING_GRACE_SECONDS pass.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from failover_did.call_record import CallOutcome, CallRecord, TierAttempt
from failover_did.store import breaker, events
from failover_did.store.tables import TIMEOUT_SECONDS, CallLogItem, aws_region, botocore_session

RECORDING_GRACE_SECONDS = 6.0  # how long the status callback waits for a voicemail's recording
POLL_SECONDS = 0.5
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
BATCH_GET_TRIES = 5
pause: Callable[[float], None] = time.sleep  # the status callback's wait between reads (tests replace it)
_OUTCOMES = frozenset(o.value for o in CallOutcome)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class CallLogError(PynamoDBException):
    """A call-log request DynamoDB refused or never answered (the breaker reads `cause`)."""

    msg = "call log request failed"


@lru_cache(maxsize=1)
def _client() -> Any:
    # Same bounds as the PynamoDB models: the webhook never waits long on the log.
    config = Config(
        connect_timeout=TIMEOUT_SECONDS,
        read_timeout=TIMEOUT_SECONDS,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return botocore_session().create_client("dynamodb", region_name=aws_region(), config=config)


def _table() -> str:
    return str(CallLogItem.Meta.table_name)


@dataclass(frozen=True)
class Caller:
    """What every webhook of a call knows about it."""

    call_sid: str
    number: str
    caller: str
    test: bool = False


class _Update:
    """An UpdateItem expression built field by field."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.fields: dict[str, Any] | None = {}  # the item it makes where there is none; None: by path only

    def _name(self, path: str) -> str:
        parts = []
        for part in path.split("."):
            key = f"#n{len(self.names)}"
            self.names[key] = part
            parts.append(key)
        return ".".join(parts)

    def _value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = _serializer.serialize(value)
        return key

    def _field(self, path: str, value: str) -> None:
        if self.fields is not None and "." not in path:
            self.fields[path] = self.values[value]
        else:
            self.fields = None

    def set(self, path: str, value: Any) -> _Update:
        key = self._value(value)
        self.clauses.append(f"{self._name(path)} = {key}")
        self._field(path, key)
        return self

    def keep(self, path: str, value: Any) -> _Update:
        """Set unless already set (a retry, or an earlier webhook knew better)."""
        name, key = self._name(path), self._value(value)
        self.clauses.append(f"{name} = if_not_exists({name}, {key})")
        self._field(path, key)
        return self

    def create_or_run(self, call_sid: str) -> dict[str, Any]:
        """The call's first write: a PutItem of the fields where no item is yet (the common case, and a
        lighter request than the expression), else the UpdateItem. Returns the item as it now is."""
        if self.fields is None:
            return self.run(call_sid)
        item = {"call_sid": {"S": call_sid}, **self.fields}
        request = {"TableName": _table(), "Item": item, "ConditionExpression": "attribute_not_exists(call_sid)"}
        try:
            _call(lambda: _client().put_item(**request))
        except CallLogError as error:
            if breaker.error_code(error) != "ConditionalCheckFailedException":
                raise
            return self.run(call_sid)  # a retry, or another webhook of the call wrote first
        return _plain(item)

    def run(self, call_sid: str, condition: str | None = None, *, item_back: bool = True) -> dict[str, Any]:
        """Write; returns the whole item as it now is (empty when `item_back` is False)."""
        request: dict[str, Any] = {
            "TableName": _table(),
            "Key": {"call_sid": {"S": call_sid}},
            "UpdateExpression": "SET " + ", ".join(self.clauses),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
            "ReturnValues": "ALL_NEW" if item_back else "NONE",
        }
        if condition:
            request["ConditionExpression"] = condition
        response = _call(lambda: _client().update_item(**request))
        return _plain(response.get("Attributes", {}))


# Its own breaker: trouble with the log table alone never stops the webhook reading rules. And no try
# while DynamoDB as a whole failed moments ago (the shared breaker is open): no extra timeout for a caller.
# A log request that got no answer opens the shared breaker as well.
log_breaker = breaker.Breaker()


def _call(operation: Callable[[], Any]) -> Any:
    def wrapped() -> Any:
        try:
            return operation()
        except (ClientError, BotoCoreError) as error:
            raise CallLogError(str(error), cause=error) from error

    if breaker.dynamodb.is_open:
        raise breaker.StoreSkipped()
    try:
        return log_breaker.call(wrapped)
    except CallLogError as error:
        if breaker.error_code(error) is None:
            _unreachable(error)
        raise


def _unreachable(error: CallLogError) -> None:
    """No answer at all (a timeout, a refused connection): DynamoDB itself is unwell, not just the log
    table, so the shared breaker opens too and the rest of this request asks DynamoDB nothing more."""

    def fail() -> None:
        raise error

    with contextlib.suppress(PynamoDBException):
        breaker.dynamodb.call(fail)


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _identify(update: _Update, call: Caller, at: datetime) -> _Update:
    """What identifies the call, on every write that can make the item, so it is whole whichever webhook's
    write comes first (or is the only one that lands)."""
    if call.number:  # the recording callback names no number; an index key may not be empty
        update.keep("number", call.number)
    update.keep("caller", call.caller or "unknown")
    update.keep("started", events.iso(at)).keep("day", f"{at.astimezone(UTC):%Y-%m-%d}")
    update.keep("expires_at", int((at + timedelta(days=events.retention_days())).timestamp()))
    if call.test:
        update.set("test", True)
    return update


def _attempt(attempt: TierAttempt) -> dict[str, Any]:
    value: dict[str, Any] = {"tier": attempt.tier, "target": attempt.target, "outcome": attempt.outcome}
    if attempt.sip_code is not None:
        value["sip_code"] = attempt.sip_code
    return value


# --------------------------------------------------------------------------------------------------
# Writes, one per webhook
# --------------------------------------------------------------------------------------------------


def call_started(call: Caller, at: datetime, first: TierAttempt | None, *, unknown_number: bool = False) -> None:
    """The call exists, and which tier rings first (or that the number has no rule)."""
    update = _identify(_Update(), call, at)
    update.keep("tiers", {str(first.hop): _attempt(first)} if first else {})
    if unknown_number:
        update.set("unknown_number", True)
    update.run(call.call_sid)


def dial_ended(
    call: Caller,
    at: datetime,
    attempt: TierAttempt,
    *,
    started: datetime | None = None,
    next_attempt: TierAttempt | None = None,
    answered_by: str | None = None,
    final_voicemail: bool | None = None,
) -> None:
    """A Dial action: how the leg of `attempt.hop` ended and what the call does next (rings the next
    tier, was answered, or reached the final treatment; `final_voicemail` says whether that records).
    `started` is when the call reached /voice (carried on the action URL); the first write keeps it."""

    def update(*, whole_map: bool = False) -> _Update:
        # Only a write that can make the item carries what identifies the call: a dial stored into the
        # tiers map is refused where the map (written with the identity) is missing, then repaired below.
        u = _identify(_Update(), call, started or at) if whole_map else _Update()
        if whole_map:
            tiers = {str(attempt.hop): _attempt(attempt)}
            if next_attempt is not None:
                tiers[str(next_attempt.hop)] = _attempt(next_attempt)
            u.keep("tiers", tiers)
        else:
            u.set(f"tiers.{attempt.hop}", _attempt(attempt))
            if next_attempt is not None:
                u.keep(f"tiers.{next_attempt.hop}", _attempt(next_attempt))
        if answered_by is not None:
            u.set("answered_by", answered_by)
        if final_voicemail is not None:
            u.keep("final_at", events.iso(at)).set("voicemail", final_voicemail)
        return u

    if attempt.hop == 1:
        # The call's first write (/voice writes nothing): one request makes the tiers map with this dial in
        # it. Only when a map was already there (a retried webhook) is the dial written into it as well.
        item = update(whole_map=True).create_or_run(call.call_sid)
        if (item.get("tiers") or {}).get(str(attempt.hop)) == _attempt(attempt):
            return
    try:
        update().run(call.call_sid, item_back=False)
    except CallLogError as error:
        if breaker.error_code(error) != "ValidationException":
            raise
        # The item has no tiers map yet (the first dial's write failed): make it, then write the dial.
        _identify(_Update(), call, started or at).keep("tiers", {}).run(call.call_sid, item_back=False)
        update().run(call.call_sid, item_back=False)


def voicemail_recorded(call: Caller, at: datetime, url: str | None, seconds: int | None) -> CallRecord | None:
    """The Record action: the message's URL and length. Returns the record when this closed the call."""
    update = _identify(_Update(), call, at)
    if url:
        update.keep("recording_url", url)
    if seconds is not None:
        update.keep("recording_seconds", seconds)
    update.keep("final_at", events.iso(at)).keep("voicemail", True)
    return _close_if_over(call.call_sid, update.run(call.call_sid), at)


def recording_ready(call: Caller, at: datetime, status: str, url: str | None, seconds: int | None) -> CallRecord | None:
    """The recording status callback (completed, absent, failed). Returns the record when this closed
    the call."""
    update = _identify(_Update(), call, at).set("recording_status", status)
    if status == "completed" and url:
        update.set("recording_url", url)
        if seconds is not None:
            update.set("recording_seconds", seconds)
    return _close_if_over(call.call_sid, update.run(call.call_sid), at)


def transcription_ready(call: Caller, at: datetime, status: str, text: str | None) -> CallRecord | None:
    """Twilio's transcription callback (completed or failed). Returns the record, with its transcript,
    only to the request that stored the text first: a retry finds it there and gets None."""
    update = _identify(_Update(), call, at).set("transcription_status", status)
    if status != "completed" or not text:
        update.run(call.call_sid)
        return None
    update.set("transcript", text)
    try:
        return to_record(update.run(call.call_sid, condition="attribute_not_exists(transcript)"))
    except CallLogError as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            return None
        raise


def call_ended(
    call: Caller,
    at: datetime,
    call_status: str,
    call_seconds: int | None,
    *,
    unknown_number: bool = False,
) -> CallRecord | None:
    """The status callback: the call is over. Returns the record when this closed it (None when a
    retry, or when the recording callback closed it)."""
    started = at - timedelta(seconds=call_seconds or 0)
    update = _identify(_Update(), call, started).keep("ended", events.iso(at)).set("call_status", call_status)
    if call_seconds is not None:
        update.set("call_seconds", call_seconds)
    if unknown_number:
        update.set("unknown_number", True)
    item = update.run(call.call_sid)
    deadline = time.monotonic() + RECORDING_GRACE_SECONDS
    while _awaits_recording(item) and time.monotonic() < deadline:
        pause(POLL_SECONDS)
        item = _get(call.call_sid) or item
    return _close(call.call_sid, item, at)


# --------------------------------------------------------------------------------------------------
# Closing: the outcome, decided once
# --------------------------------------------------------------------------------------------------


def _awaits_recording(item: Mapping[str, Any]) -> bool:
    return (
        "closed_at" not in item
        and bool(item.get("final_at"))
        and bool(item.get("voicemail"))
        and not item.get("recording_url")
        and not item.get("recording_status")
    )


def _close_if_over(call_sid: str, item: Mapping[str, Any], at: datetime) -> CallRecord | None:
    if "ended" not in item:
        return None  # the status callback closes it
    return _close(call_sid, item, at)


def _close(call_sid: str, item: Mapping[str, Any], at: datetime) -> CallRecord | None:
    if "closed_at" in item:
        return None
    outcome, ring = decide(item)
    update = _Update().set("outcome", outcome.value).set("closed_at", events.iso(at))
    if ring is not None:
        update.set("ring_seconds", ring)
    try:
        closed = update.run(call_sid, condition="attribute_not_exists(closed_at)")
    except CallLogError as error:
        if breaker.error_code(error) == "ConditionalCheckFailedException":
            return None
        raise
    return to_record(closed)


def decide(item: Mapping[str, Any]) -> tuple[CallOutcome, int | None]:
    """How the call ended, and how long the caller waited (for a missed call)."""
    if item.get("unknown_number"):
        return CallOutcome.UNKNOWN_NUMBER, None
    if item.get("answered_by"):
        return CallOutcome.ANSWERED, None
    started = _time(item.get("started"))
    if item.get("final_at"):
        reached = _time(item.get("final_at"))
        ring = int((reached - started).total_seconds()) if reached and started else None
        if item.get("recording_url") and int(item.get("recording_seconds") or 0) > 0:
            return CallOutcome.VOICEMAIL, ring
        return CallOutcome.FINAL, ring
    # From /voice's start to the end, or Twilio's CallDuration, whichever is longer: with answerOnBridge
    # the caller's leg is not answered while it rings, so CallDuration may leave the ringing out.
    ended = _time(item.get("ended"))
    spans = [int(item["call_seconds"])] if item.get("call_seconds") is not None else []
    if ended and started:
        spans.append(int((ended - started).total_seconds()))
    return CallOutcome.CALLER_HUNG_UP, max(spans) if spans else None


# --------------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------------


def _get(call_sid: str) -> dict[str, Any] | None:
    request = {"TableName": _table(), "Key": {"call_sid": {"S": call_sid}}, "ConsistentRead": True}
    response = _call(lambda: _client().get_item(**request))
    item = response.get("Item")
    return _plain(item) if item else None


def get(call_sid: str) -> CallRecord | None:
    item = _get(call_sid)
    return to_record(item) if item else None


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def to_record(item: Mapping[str, Any]) -> CallRecord:
    tiers = []
    for hop, value in sorted((item.get("tiers") or {}).items(), key=lambda kv: int(kv[0])):
        code = value.get("sip_code")
        tiers.append(
            TierAttempt(
                hop=int(hop),
                tier=int(value.get("tier", 0)),
                target=str(value.get("target", "")),
                outcome=str(value.get("outcome", "")),
                sip_code=int(code) if code is not None else None,
            )
        )
    outcome = item.get("outcome")
    seconds = item.get("recording_seconds")
    ring = item.get("ring_seconds")
    return CallRecord(
        call_sid=str(item["call_sid"]),
        number=str(item.get("number", "")),
        caller=str(item.get("caller", "")),
        started=_time(item.get("started")) or datetime.fromtimestamp(0, UTC),
        ended=_time(item.get("ended")),
        outcome=CallOutcome(str(outcome)) if outcome in _OUTCOMES else CallOutcome.IN_PROGRESS,
        answered_by=str(item["answered_by"]) if item.get("answered_by") else None,
        ring_seconds=int(ring) if ring is not None else None,
        tiers=tuple(tiers),
        recording_url=str(item["recording_url"]) if item.get("recording_url") else None,
        recording_seconds=int(seconds) if seconds is not None else None,
        transcript=str(item["transcript"]) if item.get("transcript") else None,
        test=bool(item.get("test")),
    )


def _query(index: str, key: str, value: str, since: datetime) -> Iterator[CallRecord]:
    paginator = _client().get_paginator("query")
    pages = paginator.paginate(
        TableName=_table(),
        IndexName=index,
        KeyConditionExpression="#k = :k AND #s >= :s",
        ExpressionAttributeNames={"#k": key, "#s": "started"},
        ExpressionAttributeValues={":k": {"S": value}, ":s": {"S": events.iso(since)}},
        ScanIndexForward=False,
    )
    try:
        for page in pages:
            # The indexes hold keys only: the items are read by key, in the index's order.
            sids = [item["call_sid"]["S"] for item in page.get("Items", [])]
            for start in range(0, len(sids), BATCH_GET_LIMIT):
                found = _batch_get(sids[start : start + BATCH_GET_LIMIT])
                yield from (to_record(found[sid]) for sid in sids[start : start + BATCH_GET_LIMIT] if sid in found)
    except (ClientError, BotoCoreError) as error:
        raise CallLogError(str(error), cause=error) from error


def _batch_get(call_sids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    wanted: dict[str, Any] = {_table(): {"Keys": [{"call_sid": {"S": sid}} for sid in call_sids]}}
    for attempt in range(BATCH_GET_TRIES):
        response = _client().batch_get_item(RequestItems=wanted)
        for item in response.get("Responses", {}).get(_table(), []):
            plain = _plain(item)
            found[str(plain["call_sid"])] = plain
        wanted = response.get("UnprocessedKeys") or {}
        if not wanted:
            return found
        time.sleep(0.1 * 2**attempt)  # DynamoDB asked us to slow down
    raise CallLogError(f"{len(call_sids) - len(found)} call(s) not read after {BATCH_GET_TRIES} tries")


def calls_of(number: str, since: datetime) -> Iterator[CallRecord]:
    """One number's calls since `since`, newest first (one paged Query on the by-number index)."""
    return _query("by-number", "number", number, since)


def all_calls(since: datetime, now: datetime) -> Iterator[CallRecord]:
    """Every number's calls since `since`, newest first: one paged Query per UTC day on the by-day index."""
    day = now.astimezone(UTC).date()
    first = since.astimezone(UTC).date()
    while day >= first:
        yield from _query("by-day", "day", day.isoformat(), since)
        day -= timedelta(days=1)
