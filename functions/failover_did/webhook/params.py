"""The Twilio parameters the webhook reads, each checked against its documented form in one table.

Twilio signs the URL plus `key1value1key2value2…` (keys sorted, no separators), so a captured request
can be "folded": a value absorbs the keys and values after it (`CallSid=CA…CallStatusin-progress`) and
the signature still matches. Strict formats on every parameter we read close that: a folded value no
longer has its documented form, and a parameter folded away is either required or its name shows up
inside another value. A request that fails any check is refused (400) before any route runs, so it
changes nothing: no event, no health count, no budget count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from failover_did.settings import settings

_SID = re.compile(r"CA[0-9a-f]{32}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
_E164_SHAPED = re.compile(r"\+[0-9]{1,15}")
_SIP_URI = re.compile(r"sips?:[!-~]{1,250}")
_DIGITS = re.compile(r"[0-9*#]{0,32}")
_DURATION = re.compile(r"[0-9]{1,7}")
_RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
_SIP_CODE = re.compile(r"[1-6][0-9]{2}")
_TRANSCRIPTION_SID = re.compile(r"TR[0-9a-f]{32}")
MAX_CALLER_CHARS = 128
MAX_TRANSCRIPT_CHARS = 5000
MAX_URL_CHARS = 512

CALL_STATUSES = frozenset({"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"})
DIAL_CALL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})

# The routes where a call's To/Called is the callee of a screened tier, which may be a SIP URI.
SCREEN_ROUTES = frozenset({"/voice/screen", "/voice/screen/accept"})


@dataclass(frozen=True)
class Form:
    """A parameter's documented form: `check(value)` is True when the value has it."""

    check: Callable[[str], bool]
    expected: str


def _pattern(regex: re.Pattern[str], expected: str) -> Form:
    return Form(lambda v: regex.fullmatch(v) is not None, expected)


def _one_of(values: frozenset[str]) -> Form:
    return Form(lambda v: v in values, "one of " + ", ".join(sorted(values)))


def _caller(value: str) -> bool:
    # `anonymous`, `client:alice`, a SIP URI, a raw carrier value: anything printable and short.
    return 0 < len(value) <= MAX_CALLER_CHARS and value.isprintable()


def _transcript(value: str) -> bool:
    # Free speech-to-text: bounded here; the route folds it to one printable line before storing it.
    return len(value) <= MAX_TRANSCRIPT_CHARS


def _recording_url(value: str) -> bool:
    if len(value) > MAX_URL_CHARS or not value.isascii() or not value.isprintable() or " " in value:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme == "https" and parts.hostname == "api.twilio.com" and parts.port is None
    except ValueError:
        return False


def _account_sid(value: str) -> bool:
    expected = settings().account_sid
    return _ACCOUNT_SID.fullmatch(value) is not None and (expected is None or value == expected)


def _account_sid_form() -> str:
    configured = settings().account_sid
    return f"this deployment's account {configured}" if configured else "AC followed by 32 lowercase hex digits"


CALL_SID = _pattern(_SID, "CA followed by 32 lowercase hex digits")
NUMBER = _pattern(_E164_SHAPED, "an E.164 number (+ and up to 15 digits)")
NUMBER_OR_SIP = Form(
    lambda v: _E164_SHAPED.fullmatch(v) is not None or _SIP_URI.fullmatch(v) is not None,
    "an E.164 number or a sip: URI",
)
CALLER = Form(_caller, f"printable text of 1 to {MAX_CALLER_CHARS} characters")
DURATION = _pattern(_DURATION, "a whole number of seconds")

# Every parameter the service reads (or that sits between two it reads in signing order), and its form.
FORMS: dict[str, Form] = {
    "CallSid": CALL_SID,
    "ParentCallSid": CALL_SID,
    "DialCallSid": CALL_SID,
    "AccountSid": Form(_account_sid, "AC followed by 32 lowercase hex digits"),
    "CallStatus": _one_of(CALL_STATUSES),
    "DialCallStatus": _one_of(DIAL_CALL_STATUSES),
    "DialSipResponseCode": _pattern(_SIP_CODE, "a SIP response code, 100 to 699"),
    "DialBridged": _one_of(frozenset({"true", "false"})),
    "Digits": Form(lambda v: v == "hangup" or _DIGITS.fullmatch(v) is not None, "up to 32 of 0-9 * #, or hangup"),
    "DialCallDuration": DURATION,
    "CallDuration": DURATION,
    # -1 when there is no recording (RecordingStatus absent)
    "RecordingDuration": Form(lambda v: v == "-1" or _DURATION.fullmatch(v) is not None, "a whole number of seconds"),
    "RecordingSid": _pattern(_RECORDING_SID, "RE followed by 32 lowercase hex digits"),
    "RecordingStatus": _one_of(frozenset({"in-progress", "completed", "absent", "failed"})),
    "To": NUMBER,
    "Called": NUMBER,
    "From": CALLER,
    "Caller": CALLER,
    "RecordingUrl": Form(_recording_url, "an https URL on api.twilio.com"),
    "TranscriptionSid": _pattern(_TRANSCRIPTION_SID, "TR followed by 32 lowercase hex digits"),
    "TranscriptionStatus": _one_of(frozenset({"completed", "failed"})),
    "TranscriptionText": Form(_transcript, f"text of at most {MAX_TRANSCRIPT_CHARS} characters"),
}
_SORTED_NAMES = sorted(FORMS)


class Refused(ValueError):
    """The request's Twilio parameters are not in their documented form; the message names the value."""


def form_of(name: str, route: str) -> Form:
    if name in ("To", "Called") and route in SCREEN_ROUTES:
        return NUMBER_OR_SIP
    if name == "AccountSid":
        return Form(FORMS[name].check, _account_sid_form())
    return FORMS[name]


def check_params(params: Mapping[str, str], route: str) -> None:
    """Raise Refused, naming the parameter, its value and the reason, unless every parameter the webhook
    reads has its documented form and the route's required ones are there."""
    if not params.get("CallSid"):
        raise Refused("CallSid is missing")
    if route == "/voice" and not (params.get("To") or params.get("Called")):
        raise Refused("To and Called are both missing: no number to look up")
    for name in _SORTED_NAMES:
        value = params.get(name)
        if value is None:
            continue
        form = form_of(name, route)
        if not form.check(value):
            raise Refused(f"{name}={_shown(value)}: expected {form.expected}")
    folded = _folded(params)
    if folded is not None:
        key, name = folded
        raise Refused(f"the value of {_shown(key)} contains the parameter name {name}: a folded request")


def _folded(params: Mapping[str, str]) -> tuple[str, str] | None:
    """A parameter the webhook reads that is absent but whose name sits inside the value of a key that
    sorts before it: the signature of a request whose later parameters were folded into one value."""
    absent = [name for name in _SORTED_NAMES if name not in params]
    if not absent:
        return None
    for key, value in params.items():
        for name in absent:
            if name > key and name in value:
                return key, name
    return None


def _shown(value: str) -> str:
    """A value as it may appear in a log line or a 400 body: bounded, control characters escaped."""
    short = value if len(value) <= 80 else value[:80] + "…"
    return repr(short)
