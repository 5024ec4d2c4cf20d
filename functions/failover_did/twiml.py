"""TwiML for each routing step, built with twilio's VoiceResponse."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from failover_did.routing import DialTier, Finish, Step, Stop

UNKNOWN_NUMBER_SAY = "This number is not set up to take calls yet. Goodbye."
STORE_DOWN_SAY = "Sorry, we cannot connect your call right now. Please try again in a few minutes."
SCREEN_PROMPT = "You have a call. Press 1 to accept it."
VOICEMAIL_MAX_SECONDS = 120
SCREEN_WAIT_SECONDS = 8
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Characters XML 1.0 does not allow anywhere in a document (C0 controls but tab/LF/CR, surrogates,
# U+FFFE/U+FFFF): a `say` stored before validation could hold them, and Twilio refuses such a document.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_REF = re.compile(r"&#(?:([0-9]{1,8})|x([0-9a-fA-F]{1,8}));")
START_QUERY = "start"  # when the call reached /voice (Unix seconds), on Dial action URLs
TEST_QUERY = "test"  # `test=1` on a Voice URL marks a test call (simulate, drill); kept on every URL we render


def url(base: str, path: str, *, test: bool = False, **query: int | str) -> str:
    """An absolute URL of ours; the query stays ASCII and simple so Twilio's signature survives it."""
    if test:
        query[TEST_QUERY] = 1
    return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"


def xml_safe(document: str) -> str:
    """`document` with every character XML 1.0 does not allow replaced by a space, whether it is there
    raw or as a character reference (the serializer writes a lone surrogate as `&#55296;`)."""
    return _CHAR_REF.sub(_allowed_ref, _NOT_XML.sub(" ", document))


def _allowed_ref(match: re.Match[str]) -> str:
    decimal, hexadecimal = match.group(1), match.group(2)
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code > 0x10FFFF or _NOT_XML.match(chr(code)):
        return " "
    return match.group(0)


@lru_cache(maxsize=4096)
def caller_id_for(caller: str, called: str) -> str | None:
    """The caller ID the dialed leg presents: None (Twilio passes the caller's own through) when `caller`
    is a valid, dialable number; else the business's number `called`. Withheld callers arrive as
    `anonymous` or as placeholders such as +266696687 (ANONYMOUS) and +7378742833 (RESTRICTED), and an
    invalid caller ID can make the outbound leg fail (Twilio error 13214)."""
    if not _E164.fullmatch(caller):
        return called or None
    import phonenumbers  # here, not at import: only calls pay for it, once per container

    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(caller, None))
    except phonenumbers.NumberParseException:
        valid = False
    return None if valid else called or None


def render(step: Step, *, base: str, caller: str, called: str, test: bool = False, started: int | None = None) -> str:
    """The TwiML document for `step`. `base` is our public URL prefix (scheme, host, stage); `test` marks
    a test call, whose every action and screening URL keeps the marker. `started` (Unix seconds) rides on
    the Dial action URL: the call log learns when the call began without a write on /voice."""
    return _render(step, base, caller_id_for(caller, called), test, started)


@lru_cache(maxsize=4096)
def _render(step: Step, base: str, caller_id: str | None, test: bool, started: int | None) -> str:
    # Steps are immutable values: a warm container renders each distinct document once.
    response = VoiceResponse()
    if isinstance(step, DialTier):
        when = {START_QUERY: started} if started is not None else {}
        dial = response.dial(
            action=url(base, "/voice/action", test=test, tier=step.index, hop=step.hop, **when),
            method="POST",
            timeout=step.tier.timeout,
            answer_on_bridge=True,
            caller_id=caller_id,
        )
        screen = url(base, "/voice/screen", test=test, tier=step.index) if step.tier.screen else None
        if step.tier.is_sip:
            dial.sip(step.tier.target, url=screen, method="POST" if screen else None)
        else:
            dial.number(step.tier.target, url=screen, method="POST" if screen else None)
    elif isinstance(step, Finish):
        response.say(step.final.say)
        if step.final.voicemail:
            response.record(
                action=url(base, "/voice/voicemail", test=test),
                method="POST",
                max_length=VOICEMAIL_MAX_SECONDS,
                play_beep=True,
                # Twilio says here when the recording is stored (or that there is none): the call log
                # waits for it so the missed-call notice carries the link.
                recording_status_callback=url(base, "/voice/recording", test=test),
                recording_status_callback_method="POST",
                recording_status_callback_event="completed absent",
                **_transcription(base, test) if step.final.transcribe else {},
            )
        response.hangup()
    elif isinstance(step, Stop):
        response.hangup()
    return xml_safe(str(response))


def _transcription(base: str, test: bool) -> dict[str, str]:
    """Twilio transcribes the message and posts the text to us; the call log keeps it for the notice."""
    return {"transcribe": "true", "transcribe_callback": url(base, "/voice/transcription", test=test)}


def say_and_hang_up(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return xml_safe(str(response))


def screen_prompt(base: str, tier: int, *, test: bool = False) -> str:
    """Played to the callee of a screened tier: press 1 to take the call, anything else drops the leg."""
    response = VoiceResponse()
    gather = response.gather(
        action=url(base, "/voice/screen/accept", test=test, tier=tier),
        method="POST",
        num_digits=1,
        timeout=SCREEN_WAIT_SECONDS,
    )
    gather.say(SCREEN_PROMPT)
    response.hangup()
    return xml_safe(str(response))


def empty() -> str:
    return str(VoiceResponse())
