"""The routing core: which tier a call dials next. Pure functions of the rule, the destinations'
health and the outcome Twilio reported; no AWS, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from failover_did.rules.model import MAX_FAILOVER_TIERS, Final, Rule, Tier

# A call never walks more dials than the longest possible cascade, even if its rule is edited mid-call.
MAX_HOPS = MAX_FAILOVER_TIERS + 1

# Only a destination judged down is skipped; "up", "degraded", "unverified" (the prober never reached
# it) and a target with no state at all are dialed. How a destination is judged: health/hysteresis.py.
DOWN = "down"
Health = Mapping[str, str]  # probe target -> "up" | "degraded" | "down" | "unverified"; missing: no state

_STATUS_TRIGGER = {"busy": "busy", "no-answer": "timeout", "failed": "failed"}
ANSWERED_STATUSES = frozenset({"completed", "answered"})


@dataclass(frozen=True)
class DialOutcome:
    """How a dialed leg ended, as Twilio's Dial action reported it."""

    status: str  # DialCallStatus: completed | answered | busy | no-answer | failed | canceled
    sip_code: int | None = None  # DialSipResponseCode, for <Sip> legs
    bridged: bool | None = None  # DialBridged: the caller and callee were connected
    screen_accepted: bool = False  # the callee pressed 1 in call screening
    caller_gone: bool = False  # the caller's own leg has ended (CallStatus completed/canceled)

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, screen_accepted: bool = False) -> DialOutcome:
        code = params.get("DialSipResponseCode", "")
        bridged = params.get("DialBridged", "").lower()
        return cls(
            status=params.get("DialCallStatus", "").strip().lower(),
            sip_code=int(code) if code.isascii() and code.isdigit() and len(code) == 3 else None,
            bridged={"true": True, "false": False}.get(bridged),
            screen_accepted=screen_accepted,
            caller_gone=params.get("CallStatus", "").lower() in ("completed", "canceled"),
        )


@dataclass(frozen=True)
class DialTier:
    """Dial `tier`, the rule's tier number `index` (0 is the primary); `reason` is why it is dialed."""

    index: int
    tier: Tier
    reason: str
    hop: int


@dataclass(frozen=True)
class Finish:
    """No tier took the call: play the rule's final treatment."""

    final: Final
    reason: str


@dataclass(frozen=True)
class Stop:
    """The call is over for us: answered, or the caller hung up. Nothing more is dialed."""

    reason: str


Step = DialTier | Finish | Stop


def is_down(tier: Tier, health: Health) -> bool:
    return health.get(probe_target(tier)) == DOWN


def probe_target(tier: Tier) -> str:
    """What the health checker probes for a tier: its own `health` target, else the tier's target."""
    return tier.health or tier.target


def first_step(rule: Rule, health: Health | None = None) -> DialTier:
    """The first dial of a call: the first tier that is not known to be down (the primary if all are)."""
    health = health or {}
    for index, tier in enumerate(rule.tiers):
        if not is_down(tier, health):
            reason = (
                "primary" if index == 0 else "skipped down: " + ", ".join(probe_target(t) for t in rule.tiers[:index])
            )
            return DialTier(index=index, tier=tier, reason=reason, hop=1)
    return DialTier(index=0, tier=rule.primary, reason="every tier is down; dialing all in order", hop=1)


def matched_trigger(triggers: frozenset[str], outcome: DialOutcome) -> str | None:
    """The trigger a failed leg matches, SIP code first, or None when the rule says not to fail over."""
    if outcome.sip_code is not None and outcome.sip_code >= 300:
        code = str(outcome.sip_code)
        for candidate in (code, f"{code[0]}xx"):
            if candidate in triggers:
                return candidate
    status = _STATUS_TRIGGER.get(outcome.status, "failed")
    if outcome.status in ANSWERED_STATUSES:
        status = "timeout"  # answered but the screened callee never accepted: nobody took the call
    return status if status in triggers else None


def answered(tier: Tier, outcome: DialOutcome) -> bool:
    if outcome.status not in ANSWERED_STATUSES:
        return False
    if tier.screen:
        return outcome.bridged is True or outcome.screen_accepted
    return True


def next_step(rule: Rule, index: int, hop: int, outcome: DialOutcome, health: Health | None = None) -> Step:
    """What to do when the leg to tier `index` (the `hop`-th dial of this call) ended with `outcome`."""
    health = health or {}
    if outcome.caller_gone or outcome.status == "canceled":
        return Stop("caller hung up")
    tier = rule.tiers[index] if 0 <= index < len(rule.tiers) else None
    if tier is not None and answered(tier, outcome):
        return Stop("answered")
    trigger = matched_trigger(rule.triggers, outcome)
    if trigger is None:
        return Finish(rule.final, f"outcome {describe(outcome)} is not a failover trigger")
    if hop >= MAX_HOPS:
        return Finish(rule.final, f"{MAX_HOPS} dials reached")
    remaining = list(enumerate(rule.tiers))[index + 1 :]
    if not remaining:
        return Finish(rule.final, f"{trigger} on the last tier")
    up = [(i, t) for i, t in remaining if not is_down(t, health)]
    next_index, next_tier = (up or remaining)[0]
    return DialTier(index=next_index, tier=next_tier, reason=trigger, hop=hop + 1)


def live_failure_reason(outcome: DialOutcome) -> str | None:
    """Whether a live call's failure says the destination itself is unwell (counted as a failed probe,
    as Kamailio's dispatcher does): a 5xx or 408, or a transport failure with no SIP answer at all.
    Busy, declined (6xx) and not-found answers come from a working destination."""
    code = outcome.sip_code
    if code is not None and (code == 408 or 500 <= code <= 599):
        return str(code)
    if code is None and outcome.status == "failed":
        return "failed"
    return None


def reason_class(reason: str) -> str:
    """A failover's reason as one of a few metric values: SIP codes and classes become sip-4xx/5xx/6xx."""
    if reason in ("timeout", "busy", "failed", "down"):
        return reason
    return f"sip-{reason[0]}xx" if reason[:1] in ("4", "5", "6") else "failed"


def outcome_class(tier: Tier | None, outcome: DialOutcome) -> str:
    """How a dialed leg ended, as one of a few metric values."""
    if outcome.caller_gone or outcome.status == "canceled":
        return "canceled"
    if tier is not None and answered(tier, outcome):
        return "answered"
    return outcome.status if outcome.status in ("busy", "no-answer", "failed") else "other"


def describe(outcome: DialOutcome) -> str:
    text = outcome.status or "unknown"
    return f"{text} (SIP {outcome.sip_code})" if outcome.sip_code else text
