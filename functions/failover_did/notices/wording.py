"""The words of a missed-call notice: one GSM-7 SMS and an email an engineer can call the caller back from.

Pure: a CallRecord (or a digest's few lines) in, a delivery.Notice out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from failover_did.alerts.delivery import Notice
from failover_did.alerts.gsm import SMS_LIMIT, SUBJECT_LIMIT, fit, gsm_text, septets
from failover_did.alerts.wording import clock, full_target, human_number, one_line, stamp, tier_name
from failover_did.call_record import CallOutcome, CallRecord

MISSED_CALL = "missed-call"  # the notice's `about` (SNS attribute "notice")
HIDDEN = "hidden caller"
# What Twilio puts in From when the caller withheld their number (text, or its reserved pseudo-numbers).
_HIDDEN_FROM = frozenset({"", "anonymous", "restricted", "private", "unknown", "unavailable", "blocked"})
_HIDDEN_NUMBERS = frozenset({"+266696687", "+86282452253", "+8656696", "+2562533", "+7378742833"})
MAX_URL = 300  # a recording URL longer than this is not Twilio's; shown cut
DIGEST_LINES = 20  # calls listed one by one in a digest's email
TRANSCRIPT_KEPT = 500  # characters of a transcript kept for a digest


def caller(raw: str) -> str:
    """Who called, as people read it: a formatted number, or "hidden caller"."""
    text = one_line(raw, 64)
    if text.lower() in _HIDDEN_FROM or text in _HIDDEN_NUMBERS:
        return HIDDEN
    return human_number(text)


def minutes(seconds: int | None) -> str:
    """ "0:42", "12:05"; "?" when unknown."""
    if seconds is None or seconds < 0:
        return "?"
    return f"{seconds // 60}:{seconds % 60:02d}"


def ending(record: CallRecord) -> str:
    """How the call ended, short: "voicemail 0:42", "hung up after 35 s", "final message"."""
    if record.outcome is CallOutcome.VOICEMAIL:
        return f"voicemail {minutes(record.recording_seconds)}"
    if record.outcome is CallOutcome.CALLER_HUNG_UP:
        return f"hung up after {record.ring_seconds} s" if record.ring_seconds is not None else "caller hung up"
    return "final message, no voicemail"


def sms(record: CallRecord, now: datetime) -> str:
    """One 160-septet SMS. The recording link goes in when it fits whole (a cut link is useless)."""
    head = (
        f"Missed call {gsm_text(caller(record.caller))} -> {human_number(record.number)} "
        f"at {clock(record.started, now)}: {ending(record)}"
    )
    url = _url(record.recording_url)
    if url:
        with_link = f"{head} {url}"
        if septets(gsm_text(with_link)) <= SMS_LIMIT:
            return gsm_text(with_link)
        return fit(head, tail=" (link in email)")
    return fit(head)


def subject(record: CallRecord) -> str:
    return fit(f"Missed call from {caller(record.caller)} to {human_number(record.number)}", SUBJECT_LIMIT)


def email(record: CallRecord, now: datetime) -> str:
    lines = [
        f"A call to {human_number(record.number)} was missed; nobody took it.",
        "",
        f"Caller:   {caller(record.caller)}" + ("" if caller(record.caller) == HIDDEN else " (call them back)"),
        f"Number:   {human_number(record.number)}",
        f"Started:  {stamp(record.started)}",
        f"Ended:    {stamp(record.ended) if record.ended else 'unknown'}",
        f"How:      {_how(record)}",
        f"Call SID: {one_line(record.call_sid, 64)}",
        "",
        "What was tried:",
        *_tried(record),
    ]
    url = _url(record.recording_url)
    if record.outcome is CallOutcome.VOICEMAIL or url:
        lines += ["", f"Voicemail: {minutes(record.recording_seconds)}", f"Recording: {url or 'not yet known'}"]
        lines.append("(The recording stays in the Twilio account; opening it may ask for the Twilio login.)")
    if record.transcript:
        lines += ["", "Transcript (Twilio):", one_line(record.transcript, 4000)]
    lines += ["", f"`failover-did calls {record.number} --missed` lists this number's missed calls."]
    return "\n".join(lines)


def missed_notice(record: CallRecord, now: datetime) -> Notice:
    return Notice(sms=sms(record, now), subject=subject(record), email=email(record, now), about=MISSED_CALL)


@dataclass(frozen=True)
class Missed:
    """One missed call as a digest keeps it (small: it is stored in the digest window's item)."""

    call_sid: str
    caller: str
    started: str  # ISO
    ending: str
    recording_url: str | None = None
    transcript: str | None = None  # bounded to TRANSCRIPT_KEPT characters

    @classmethod
    def of(cls, record: CallRecord) -> Missed:
        return cls(
            record.call_sid,
            record.caller,
            record.started.astimezone(UTC).isoformat(),
            ending(record),
            _url(record.recording_url) or None,
            one_line(record.transcript, TRANSCRIPT_KEPT) if record.transcript else None,
        )


def digest_notice(number: str, calls: Sequence[Missed], total: int, since: str, now: datetime) -> Notice:
    """The one notice for the calls missed at `number` while its window was open (`total` may exceed the
    calls kept)."""
    noun = "missed call" if total == 1 else "missed calls"
    latest = calls[-1] if calls else None
    tail = f"; last {gsm_text(caller(latest.caller))} at {clock(latest.started, now)}" if latest else ""
    text = f"{total} more {noun} to {human_number(number)} since {clock(since, now)}{tail}"
    callers = sorted({caller(c.caller) for c in calls})
    short = f"{text}: {', '.join(callers)}" if len(callers) > 1 else text
    lines = [
        f"{total} more {noun} to {human_number(number)} since {stamp(since)}:",
        "",
        *(_digest_line(c) for c in calls[-DIGEST_LINES:]),
    ]
    if total > len(calls[-DIGEST_LINES:]):
        lines.append(f"- ... and {total - len(calls[-DIGEST_LINES:])} more not listed here")
    lines += ["", f"`failover-did calls {number} --missed --since 1h` lists them all."]
    return Notice(
        sms=fit(short) if septets(gsm_text(short)) <= SMS_LIMIT else fit(text),
        subject=fit(f"{total} more {noun} to {human_number(number)}", SUBJECT_LIMIT),
        email="\n".join(lines),
        about=MISSED_CALL,
    )


def _digest_line(call: Missed) -> str:
    link = f"  {call.recording_url}" if call.recording_url else ""
    said = f'\n    "{call.transcript}"' if call.transcript else ""
    return f"- {stamp(call.started)}  {caller(call.caller)}: {call.ending}{link}{said}"


def transcript_notice(record: CallRecord, now: datetime) -> Notice:
    """The follow-up when a voicemail's transcription arrives after its notice went out."""
    said = one_line(record.transcript, 4000)
    who = f"{gsm_text(caller(record.caller))} -> {human_number(record.number)} at {clock(record.started, now)}"
    lines = [
        f"Twilio transcribed the voicemail {caller(record.caller)} left on {human_number(record.number)} "
        f"at {stamp(record.started)}:",
        "",
        said,
        "",
        f"Recording: {_url(record.recording_url) or 'not yet known'} ({minutes(record.recording_seconds)})",
        f"Call SID: {one_line(record.call_sid, 64)}",
    ]
    return Notice(
        sms=fit(f'Voicemail {who}: "{said}', tail='"'),
        subject=fit(f"Voicemail transcript: {caller(record.caller)} to {human_number(record.number)}", SUBJECT_LIMIT),
        email="\n".join(lines),
        about=MISSED_CALL,
    )


def _how(record: CallRecord) -> str:
    if record.outcome is CallOutcome.VOICEMAIL:
        return f"no tier took it; the caller left a voicemail ({minutes(record.recording_seconds)})"
    if record.outcome is CallOutcome.CALLER_HUNG_UP:
        waited = f" after {record.ring_seconds} s of ringing" if record.ring_seconds is not None else ""
        return f"the caller hung up{waited} before anyone answered"
    return "no tier took it; the caller heard the final message (no voicemail)"


def _tried(record: CallRecord) -> list[str]:
    if not record.tiers:
        return ["- nothing was dialed"]
    out = []
    for attempt in record.tiers:
        code = f", SIP {attempt.sip_code}" if attempt.sip_code is not None else ""
        outcome = one_line(attempt.outcome, 40) or "still ringing when the call ended"
        out.append(f"- {tier_name(attempt.tier)}: {one_line(full_target(attempt.target), 200)}: {outcome}{code}")
    return out


def _url(url: str | None) -> str:
    return one_line(url, MAX_URL) if url else ""
