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
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def url(base: str, path: str, **query: int | str) -> str:
    """An absolute URL of ours; the query stays ASCII and simple so Twilio's signature survives it."""
    return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"


def render(step: Step, *, base: str, caller: str, called: str) -> str:
    """The TwiML document for `step`. `base` is our public URL prefix (scheme, host, stage)."""
    # A caller ID that is not E.164 (anonymous, a raw carrier value) can make the outbound leg
    # fail (Twilio error 13214): present the business's own number instead.
    return _render(step, base, None if _E164.match(caller) else called)


@lru_cache(maxsize=4096)
def _render(step: Step, base: str, caller_id: str | None) -> str:
    # Steps are immutable values: a warm container renders each distinct document once.
    response = VoiceResponse()
    if isinstance(step, DialTier):
        dial = response.dial(
            action=url(base, "/voice/action", tier=step.index, hop=step.hop),
            method="POST",
            timeout=step.tier.timeout,
            answer_on_bridge=True,
            caller_id=caller_id,
        )
        screen = url(base, "/voice/screen", tier=step.index) if step.tier.screen else None
        if step.tier.is_sip:
            dial.sip(step.tier.target, url=screen, method="POST" if screen else None)
        else:
            dial.number(step.tier.target, url=screen, method="POST" if screen else None)
    elif isinstance(step, Finish):
        response.say(step.final.say)
        if step.final.voicemail:
            response.record(
                action=url(base, "/voice/voicemail"),
                method="POST",
                max_length=VOICEMAIL_MAX_SECONDS,
                play_beep=True,
            )
        response.hangup()
    elif isinstance(step, Stop):
        response.hangup()
    return str(response)


def say_and_hang_up(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def screen_prompt(base: str, tier: int) -> str:
    """Played to the callee of a screened tier: press 1 to take the call, anything else drops the leg."""
    response = VoiceResponse()
    gather = response.gather(
        action=url(base, "/voice/screen/accept", tier=tier),
        method="POST",
        num_digits=1,
        timeout=SCREEN_WAIT_SECONDS,
    )
    gather.say(SCREEN_PROMPT)
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
