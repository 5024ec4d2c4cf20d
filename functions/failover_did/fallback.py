"""The static fallback: one TwiML document per number that walks its cascade with no help from us.

Twilio fetches a number's *Voice Fallback URL* when the Voice URL (our API) fails: no answer within
15 s, a 4xx/5xx, a DNS or TLS failure. `failover-did rules apply` publishes `static_cascade(rule)` to
S3 for each number (an unguessable key under `fallback/`), so that URL does not share our failure:
no API Gateway, no Lambda, no DynamoDB on the path, only an S3 GET.

The document dials every tier in order, each a `<Dial>` with one noun and **no action URL**: when a
leg ends, whatever the outcome, Twilio goes on with the next verb, i.e. the next tier; after the last
one the caller hears the rule's final message and the call hangs up.

What this leaves uncovered, compared with the webhook:

- **Triggers are ignored: every tier is tried.** Busy, ring-out, failure, any SIP code all move on;
  a rule that would not fail over on a ring-out (`triggers` without `timeout`) does here.
- **If the callee hangs up first while the caller stays on, the caller is offered the next tier**:
  with no action URL Twilio cannot tell an ended conversation from a failed leg. The caller hanging
  up ends the call as usual.
- **No call screening**: `screen: true` tiers are dialed plainly, so a mobile's voicemail that picks up
  counts as answered and the cascade stops there.
- **No voicemail**: `<Record>` needs an action URL of our API; only the final `say` is played.
- **No health skipping**: a tier the health checker knows to be down is still dialed and rings out
  (or fails) before the next one.
- **No caller-ID substitution**: the webhook presents the business's number when the caller's is not a
  valid number (`anonymous`, withheld-ID placeholders); here Twilio's default applies, which can make a
  leg fail (error 13214).
- `answerOnBridge` only has its full effect on the first `<Dial>` of a document (Twilio's rule); how
  later tiers sound to the caller while ringing is unverified.
- No events, metrics or passive health counts are recorded for calls that take this path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from twilio.twiml.voice_response import VoiceResponse

from failover_did.rules.model import Rule
from failover_did.twiml import xml_safe

CONTENT_TYPE = "application/xml"
PUBLIC_PREFIX = "fallback/"  # Twilio's Voice Fallback URL: public, under an unguessable key
PRIVATE_PREFIX = "private/"  # the same document by number, readable only by the webhook's role


def private_key(number: str) -> str:
    """Where the webhook finds a number's static cascade when DynamoDB fails and nothing is cached."""
    return f"{PRIVATE_PREFIX}{number}.xml"


def static_cascade(rule: Rule) -> str:
    """A TwiML document that dials `rule`'s tiers in order, then says its final message and hangs up."""
    response = VoiceResponse()
    for tier in rule.tiers:
        dial = response.dial(timeout=tier.timeout, answer_on_bridge=True)
        if tier.is_sip:
            dial.sip(tier.target)
        else:
            dial.number(tier.target)
    response.say(rule.final.say)
    response.hangup()
    return xml_safe(str(response))


def after_tier(document: str, tier: int) -> str:
    """The static cascade with its first `tier + 1` dials removed: what is left to try once the call
    has been through tiers 0..tier (used mid-call when the webhook cannot read the rule). Raises
    ET.ParseError for a document that is not XML."""
    root = ET.fromstring(xml_safe(document))
    dials = [verb for verb in root if verb.tag == "Dial"]
    for verb in dials[: tier + 1]:
        root.remove(verb)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


def servable(document: str) -> str | None:
    """`document` as the webhook may serve it (characters XML forbids replaced), or None when it is not
    a TwiML document at all: a stored copy that is corrupt must never reach Twilio."""
    cleaned = xml_safe(document)
    try:
        root = ET.fromstring(cleaned)
    except ET.ParseError:
        return None
    return cleaned if root.tag == "Response" else None
