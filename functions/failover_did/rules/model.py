"""The rules format: one number's cascade of tiers, its triggers and what happens at the end.

These types are the single definition of a rule. `rules.validate` turns a user's file into them
(and is the only place that judges a value); `to_doc`/`from_doc` move a validated rule to and from
storage, where it is kept in the same shape the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 20
MIN_TIMEOUT = 5
MAX_TIMEOUT = 600
MAX_FAILOVER_TIERS = 10
DEFAULT_TRIGGERS: tuple[str, ...] = ("timeout", "busy", "failed")
STATUS_TRIGGERS = frozenset({"timeout", "busy", "failed"})
DEFAULT_FINAL_SAY = "Sorry, nobody can take your call right now. Please try again later."


@dataclass(frozen=True)
class Tier:
    """One destination in the cascade: the primary is tier 0, failover tiers follow."""

    target: str
    timeout: int = DEFAULT_TIMEOUT
    screen: bool = False
    health: str | None = None
    # Check the TLS certificate of what is probed (sips:, ;secure=true, https:). False for a PBX with a
    # self-signed certificate: then a machine in the path could answer for it.
    tls_verify: bool = True
    probe: bool = True  # false: no probes, live calls are the only evidence

    @property
    def is_sip(self) -> bool:
        return self.target.startswith(("sip:", "sips:"))

    @property
    def is_judged(self) -> bool:
        """The tier has a health state: SIP tiers and tiers with their own `health` target. A phone number
        without one has none, and so is never skipped."""
        return bool(self.health) or self.is_sip

    @property
    def is_probed(self) -> bool:
        """The health checker probes a judged tier unless the rule says `probe: false`."""
        return self.probe and self.is_judged

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"target": self.target, "timeout": self.timeout}
        if self.screen:
            doc["screen"] = True
        if self.health:
            doc["health"] = self.health
        if not self.tls_verify:
            doc["tls_verify"] = False
        if not self.probe:
            doc["probe"] = False
        return doc


@dataclass(frozen=True)
class Final:
    """What the caller gets when no tier took the call."""

    say: str = DEFAULT_FINAL_SAY
    voicemail: bool = False
    transcribe: bool = False  # Twilio transcribes the voicemail; the text goes in the notice's email

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"say": self.say, "voicemail": self.voicemail}
        if self.transcribe:
            doc["transcribe"] = True
        return doc


@dataclass(frozen=True)
class Notify:
    """Who is told of this number's missed calls, instead of the stack's default recipients."""

    email: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()  # E.164

    def to_doc(self) -> dict[str, Any]:
        return {"email": list(self.email), "sms": list(self.sms)}


@dataclass(frozen=True)
class Rule:
    """The routing rule of one Twilio number."""

    number: str
    tiers: tuple[Tier, ...]
    triggers: frozenset[str] = frozenset(DEFAULT_TRIGGERS)
    final: Final = field(default_factory=Final)
    monthly_failover_budget: int | None = None  # failovers a month before the budget alarm
    notify: Notify | None = None  # None: missed-call notices go to the stack's default recipients

    @property
    def primary(self) -> Tier:
        return self.tiers[0]

    @property
    def failover(self) -> tuple[Tier, ...]:
        return self.tiers[1:]

    def to_doc(self) -> dict[str, Any]:
        """The rule as the user writes it under `numbers: {NUMBER: ...}`."""
        doc: dict[str, Any] = {
            "primary": self.primary.to_doc(),
            "failover": [t.to_doc() for t in self.failover],
            "triggers": sorted(self.triggers, key=_trigger_order),
            "final": self.final.to_doc(),
        }
        if self.monthly_failover_budget is not None:
            doc["monthly_failover_budget"] = self.monthly_failover_budget
        if self.notify is not None:
            doc["notify"] = self.notify.to_doc()
        return doc

    @classmethod
    def from_doc(cls, number: str, doc: dict[str, Any]) -> Rule:
        """Rebuild a rule that `rules.validate` accepted earlier (storage is trusted, not re-judged)."""
        tiers = (_tier(doc["primary"]), *(_tier(t) for t in doc.get("failover", [])))
        final = doc.get("final") or {}
        notify = doc.get("notify")
        return cls(
            number=number,
            tiers=tiers,
            triggers=frozenset(str(t) for t in doc.get("triggers", DEFAULT_TRIGGERS)),
            final=Final(
                say=str(final.get("say", DEFAULT_FINAL_SAY)),
                voicemail=bool(final.get("voicemail")),
                transcribe=bool(final.get("transcribe")),
            ),
            monthly_failover_budget=doc.get("monthly_failover_budget"),
            notify=_notify(notify),
        )


def _notify(doc: object) -> Notify | None:
    if not isinstance(doc, dict):
        return None
    return Notify(tuple(str(e) for e in doc.get("email") or ()), tuple(str(n) for n in doc.get("sms") or ()))


def _tier(doc: dict[str, Any]) -> Tier:
    return Tier(
        target=str(doc["target"]),
        timeout=int(doc.get("timeout", DEFAULT_TIMEOUT)),
        screen=bool(doc.get("screen", False)),
        health=doc.get("health"),
        tls_verify=bool(doc.get("tls_verify", True)),
        probe=bool(doc.get("probe", True)),
    )


def _trigger_order(trigger: str) -> tuple[int, str]:
    return (0 if trigger in STATUS_TRIGGERS else 1, trigger)
