"""The drill: prove, against a running webhook, that a number fails over (`failover-did drill` and the
console's Drill button run the same checks).

Plays Twilio's side of a few calls (signed like `simulate`) and checks each outcome against the number's
rule as stored in the table:

1. SIP 503 injection: the primary leg ends `failed` with `DialSipResponseCode=503` -> tier 1 is dialed;
2. Ringing timeout: the primary leg ends `no-answer` -> tier 1 is dialed;
3. Event logged: the failover of check 1 (or, if it did not fail over, check 2) is in the event log;
4. Signature enforced: the incoming call signed with a wrong token gets 403.

Drill calls are marked as tests: the Voice URL carries `test=1` (inside the signature, so a captured real
request cannot gain it) and the webhook keeps it on every URL it hands back. They come from +15005550006,
a Twilio magic test number, with CallSids of Twilio's form. Their failovers are logged, marked as tests;
they count neither as health checks nor against the monthly budget, and raise no failover metric.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

from failover_did.drill.simulator import Reply, SimulatedCall, TwilioSimulator, describe
from failover_did.routing import DialOutcome, matched_trigger

if TYPE_CHECKING:
    from failover_did.rules.model import Rule
    from failover_did.store.events import Event

DEFAULT_CALLER = "+15005550006"  # Twilio's magic "valid and available" test number
EVENT_WAIT_SECONDS = 5.0
CLOCK_MARGIN = timedelta(minutes=1)  # events are stamped by the webhook's clock, not ours

SIP_503 = "SIP 503 injection"
RINGING_TIMEOUT = "Ringing timeout"
EVENT_LOGGED = "Event logged"
SIGNATURE = "Signature enforced"
FAILOVER_TIER = "Failover tier"

NO_503_FAILOVER = "the rule's triggers do not include 503, 5xx or failed: a PBX answering 503 would not fail over"
NO_TIMEOUT_FAILOVER = "the rule's triggers do not include timeout: a primary that rings out would not fail over"

EventSource = Callable[[str, datetime], Sequence["Event"]]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    call_sid: str | None = None  # the drill call that failed over, for the event check


def drill_sid() -> str:
    """A CallSid of Twilio's form (CA + 32 hex digits); the `test=1` marker, not the SID, says it is a drill."""
    return "CA" + secrets.token_hex(16)


def tier_of(action: str) -> int | None:
    """The rule's tier index a Dial action URL reports on (`?tier=N`)."""
    values = parse_qs(urlsplit(action).query).get("tier", [])
    return int(values[-1]) if values and values[-1].isdigit() else None


def refused_call(reply: Reply) -> str:
    if reply.status == 403:
        return "the incoming call got HTTP 403: TWILIO_AUTH_TOKEN is not the token the webhook checks signatures with"
    if reply.status != 200:
        return f"the incoming call got {describe(reply)}"
    return f"the incoming call dialed nobody: {describe(reply)}"


def failover_check(
    name: str,
    rule: Rule,
    sim: TwilioSimulator,
    caller: str,
    outcome: DialOutcome,
    injected: str,
    not_a_trigger: str,
) -> Check:
    """Start a drill call, end the first leg with `outcome` and check that the next tier is dialed."""
    call = SimulatedCall(sim, rule.number, caller, sid=drill_sid())
    first = call.start()
    if first.dial is None:
        return Check(name, False, refused_call(first))
    start = tier_of(first.dial.action)
    if start is None:
        return Check(name, False, f"the first Dial's action URL names no tier: {first.dial.action}")
    reply = call.dial_ended(outcome.status, sip_code=outcome.sip_code)
    if matched_trigger(rule.triggers, outcome) is None:
        return Check(name, False, f"{not_a_trigger} (the webhook answered: {describe(reply)})")
    started = f"tier {start} {rule.tiers[start].target}" if start < len(rule.tiers) else f"tier {start}"
    if start + 1 >= len(rule.tiers):
        return Check(
            name,
            False,
            f"the call started at {started}, the last tier (the ones before it are marked down): "
            "nothing left to fail over to",
        )
    expected = start + 1
    want = rule.tiers[expected].target
    if reply.dial is None:
        return Check(name, False, f"expected tier {expected} {want}; the webhook answered: {describe(reply)}")
    to = tier_of(reply.dial.action)
    if to is None or to < expected or to >= len(rule.tiers) or reply.dial.targets != (rule.tiers[to].target,):
        dialed = ", ".join(reply.dial.targets)
        return Check(name, False, f"expected tier {expected} {want}; the webhook dialed {dialed} (tier {to})")
    note = ""
    if start > 0:
        note += f"; the call started at {started}: the tiers before it are marked down"
    if to > expected:
        note += f"; tier(s) {', '.join(str(i) for i in range(expected, to))} skipped: marked down"
    detail = f"{started} -> {injected} -> dialed tier {to} {rule.tiers[to].target}{note}"
    return Check(name, True, detail, call_sid=call.sid)


def event_check(number: str, call_sids: Sequence[str], since: datetime, find: EventSource, wait: float) -> Check:
    """The first drill call that failed over must show up as a `failover` event within `wait` seconds."""
    if not call_sids:
        return Check(EVENT_LOGGED, False, "no drill call failed over, so there is no failover event to look for")
    sid = call_sids[0]
    deadline = time.monotonic() + wait
    while True:
        try:
            found = [e for e in find(number, since) if e.kind == "failover" and e.detail.get("call_sid") == sid]
        except Exception as error:  # the store's errors: say what went wrong, in the row
            return Check(EVENT_LOGGED, False, f"cannot read the event log: {error}")
        if found:
            d = found[0].detail
            marked = ", marked as a test call" if d.get("test") else ""
            return Check(
                EVENT_LOGGED,
                True,
                f"failover tier {d.get('from_tier')} -> {d.get('to_tier')} {d.get('to_target')} "
                f"({d.get('reason')}) logged at {found[0].at} for {sid}{marked}",
            )
        if time.monotonic() >= deadline:
            return Check(
                EVENT_LOGGED,
                False,
                f"no failover event for {sid} within {wait:g} s: the webhook did not record the failover "
                "in the event log",
            )
        time.sleep(0.25)


def signature_check(sim: TwilioSimulator, number: str, caller: str, token: str) -> Check:
    """The incoming-call request signed with a wrong token must be refused with 403."""
    call = SimulatedCall(sim, number, caller, sid=drill_sid())
    params = {**call.base_params, "CallStatus": "ringing"}
    wrong = RequestValidator(f"not-{token}").compute_signature(sim.voice_url, params)
    reply = sim.post(sim.voice_url, params, signature=wrong)
    if reply.status == 403:
        return Check(SIGNATURE, True, "a request signed with a wrong token got 403")
    return Check(
        SIGNATURE,
        False,
        f"a request signed with a wrong token got {describe(reply)}: anyone who finds the URL could make it dial",
    )


def run_drill(
    number: str,
    rule: Rule | None,
    sim: TwilioSimulator,
    token: str,
    find_events: EventSource,
    *,
    caller: str = DEFAULT_CALLER,
    since: datetime | None = None,
    wait: float = EVENT_WAIT_SECONDS,
) -> list[Check]:
    """Every check, in order. Network failures to the webhook raise OSError."""
    since = since or datetime.now(UTC) - CLOCK_MARGIN
    if rule is None:
        return [
            Check(FAILOVER_TIER, False, f"no rule for {number}: nothing to fail over to (calls hear 'not set up')"),
            signature_check(sim, number, caller, token),
        ]
    if not rule.failover:
        return [
            Check(FAILOVER_TIER, False, f"no failover tier: nothing to fail over to (only {rule.primary.target})"),
            signature_check(sim, number, caller, token),
        ]
    sip = failover_check(SIP_503, rule, sim, caller, DialOutcome("failed", sip_code=503), "SIP 503", NO_503_FAILOVER)
    ring = failover_check(
        RINGING_TIMEOUT, rule, sim, caller, DialOutcome("no-answer"), "no-answer", NO_TIMEOUT_FAILOVER
    )
    sids = [c.call_sid for c in (sip, ring) if c.call_sid]
    return [sip, ring, event_check(number, sids, since, find_events, wait), signature_check(sim, number, caller, token)]


def verdict(number: str, checks: Sequence[Check]) -> str:
    failed = [c for c in checks if not c.passed]
    if not failed:
        return (
            f"PASS: {number} fails over on a SIP 503 and on a ring-out, logs the failover and refuses "
            f"forged requests ({len(checks)}/{len(checks)} checks)"
        )
    return f"FAIL: {len(failed)} of {len(checks)} checks failed for {number}: {', '.join(c.name for c in failed)}"
