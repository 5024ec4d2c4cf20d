"""The entry point the call log calls once per call that ended missed, and the scheduled flush.

Who gets a notice is chosen by SNS, from two message attributes on every missed-call notice:
`number` (the number called) and, when the number's rule has its own `notify` recipients, `audience`
= "number". The stack's default subscriptions (AlertEmail, AlertPhone) take only messages without an
`audience` (alarms and the numbers without `notify`); a number's own recipients take only messages whose
`number` is theirs (see failover_did.notices.subscriptions).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from failover_did.alerts import delivery
from failover_did.alerts.delivery import Notice
from failover_did.call_record import CallRecord
from failover_did.notices import window
from failover_did.notices.wording import Missed, digest_notice, missed_notice, transcript_notice
from failover_did.observability import logger
from failover_did.settings import settings

AUDIENCE = "audience"
OWN_RECIPIENTS = "number"  # the `audience` of a number with its own `notify`

Publish = Callable[[Notice, str], str]


def has_own_recipients(number: str) -> bool | None:
    """Whether `number`'s rule names its own recipients; None when the rule cannot be read."""
    from failover_did.store.rules_store import load_rule

    try:
        rule = load_rule(number)
    except Exception as error:
        logger.warning("rule not read for the notice", extra={"number": number, "error": str(error)})
        return None
    return rule is not None and rule.notify is not None


def addressed(notice: Notice, number: str) -> Notice:
    """`notice` with the attributes that route it. Unknown recipients (the rule unreadable): no `audience`,
    so both the default subscribers and the number's own receive it - twice is better than never."""
    attributes = [("number", number)]
    if has_own_recipients(number):
        attributes.append((AUDIENCE, OWN_RECIPIENTS))
    return Notice(notice.sms, notice.subject, notice.email, notice.about, tuple(attributes))


def missed_call(record: CallRecord, now: datetime, publish: Publish | None = None) -> None:
    """Tell the number's people about one missed call: at once for the first in a window, else in the
    window's digest. Test calls and calls not missed are never noticed. Raises when SNS refuses the
    message (its call is then kept for the next digest)."""
    if not record.missed or record.test:
        return
    publish = publish or delivery.publish
    topic_arn = settings().notify_topic_arn
    if not topic_arn:
        logger.warning("missed call not noticed: no notify topic", extra={"call_sid": record.call_sid})
        return
    missed = Missed.of(record)
    try:
        decision = window.decide(record.number, missed, now)
    except Exception as error:  # the window cannot be kept: notify every call
        logger.warning("digest window unavailable", extra={"number": record.number, "error": str(error)})
        decision = window.Decision("notify")
    if decision.action in ("accumulated", "repeat"):
        logger.info(f"missed call {decision.action}", extra={"call_sid": record.call_sid, "number": record.number})
        return
    if decision.action == "digest":
        notice = digest_notice(record.number, decision.calls, decision.total, decision.since, now)
        _send(addressed(notice, record.number), topic_arn, publish, record.number, decision.calls, decision.total, now)
        return
    kept = decision.claimed  # the call already waits in the window until its notice is confirmed
    notice = addressed(missed_notice(record, now), record.number)
    _send(notice, topic_arn, publish, record.number, () if kept else (missed,), 0 if kept else 1, now)
    if kept:
        try:
            window.delivered(record.number, record.call_sid, now)
        except Exception as error:  # it stays in the window: the digest repeats it, nothing is lost
            logger.warning("notice sent, window not updated", extra={"number": record.number, "error": str(error)})


def voicemail_transcribed(record: CallRecord, now: datetime, publish: Publish | None = None) -> None:
    """Twilio's transcription of a missed call's voicemail arrived (`record.transcript`), maybe after its
    notice went out. If that notice was the call's own, a follow-up with the text is sent, once; if the
    call waits in a digest window, the text goes into the digest. Otherwise (already in a sent digest) it
    stays in the call log. Raises when SNS refuses the follow-up."""
    if not record.transcript or not record.missed or record.test:
        return
    publish = publish or delivery.publish
    topic_arn = settings().notify_topic_arn
    if not topic_arn:
        return
    if window.transcribed(record.number, record.call_sid, record.transcript, now):
        notice = addressed(transcript_notice(record, now), record.number)
        message_id = publish(notice, topic_arn)
        logger.info("voicemail transcript sent", extra={"call_sid": record.call_sid, "message_id": message_id})


def flush(now: datetime, publish: Publish | None = None) -> list[str]:
    """Send the digest of every window that closed with calls in it; the numbers digested."""
    publish = publish or delivery.publish
    topic_arn = settings().notify_topic_arn
    if not topic_arn:
        return []  # nowhere to send: the windows keep their calls
    sent: list[str] = []
    for number in window.numbers():
        decision = window.take_due(number, now)
        if decision is None:
            continue
        notice = digest_notice(number, decision.calls, decision.total, decision.since, now)
        try:
            _send(addressed(notice, number), topic_arn, publish, number, decision.calls, decision.total, now)
        except Exception as error:
            logger.error("digest not sent", extra={"number": number, "error": str(error)})
            continue
        sent.append(number)
    return sent


def _send(
    notice: Notice,
    topic_arn: str,
    publish: Publish,
    number: str,
    calls: tuple[Missed, ...],
    count: int,
    now: datetime,
) -> None:
    try:
        message_id = publish(notice, topic_arn)
    except Exception:
        if count:
            window.put_back(number, calls, count, now)
        raise
    logger.info("missed-call notice sent", extra={"number": number, "sms": notice.sms, "message_id": message_id})


def handler(event: Any, context: object) -> dict[str, Any]:
    """The scheduled flush (template.yaml: NoticeFlushFunction, every minute)."""
    return {"digests": flush(datetime.now(UTC))}
