"""A number's status as operators read it: each tier's health in plain words, the protection status, the
missed calls of today. `failover-did status` and the console's Numbers page show the same words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from failover_did.health.hysteresis import DEGRADED, DOWN, UNVERIFIED, TargetHealth
from failover_did.protection import AT_RISK, FAILING_OVER, PROTECTED, UNPROTECTED, Protection, protection
from failover_did.routing import probe_target
from failover_did.rules.model import Rule

ADVICE = (
    "the health checker cannot reach {targets}; they are dialed as usual. Allow the probe's source address "
    "in the PBX firewall, give the tier a `health:` URL, or set `probe: false` on it."
)

# The status filter's words (as `status --status` takes them) -> the status.
STATUSES = {"protected": PROTECTED, "unprotected": UNPROTECTED, "at-risk": AT_RISK, "failing-over": FAILING_OVER}


def health_text(health: TargetHealth | None, probed: bool) -> str:
    """One tier's health in plain words (a phone number without `health:` has none)."""
    if health is None:
        return "not checked yet" if probed else "not probed (live calls only)"
    since = f" since {health.since[11:16]}Z" if health.since else ""
    answered = health.answered_at
    if health.state == DOWN:
        text = f"DOWN{since} ({health.reason})"
        if answered and answered >= health.since:
            text += f"; but a live call was answered {answered[11:16]}Z"
        return text + ("" if probed else "; not probed: dialed again 10 min after going down")
    if not probed:
        return "not probed (live calls only)" + (f"; last answered {answered[11:16]}Z" if answered else "")
    if health.state == UNVERIFIED:
        if not health.checked_at:
            return "not checked yet"
        live = f"; live calls answered (last {answered[11:16]}Z)" if answered else ""
        return f"UNVERIFIED: the prober cannot reach it ({health.reason}){live}"
    if health.state == DEGRADED and health.reason:
        return f"degraded ({health.reason})"
    return health.state


@dataclass(frozen=True)
class TierView:
    name: str  # "primary", "tier 1", ...
    target: str
    health: str  # as health_text words it
    state: str | None  # the hysteresis state (up, down, ...), None when the tier has none


@dataclass(frozen=True)
class NumberView:
    rule: Rule
    protection: Protection
    tiers: tuple[TierView, ...]
    unreachable: tuple[str, ...]  # probed targets the prober cannot reach (for ADVICE)

    @property
    def lines(self) -> list[str]:
        return [f"{t.name}: {t.target}  [{t.health}]" for t in self.tiers]


def number_view(rule: Rule, health: Mapping[str, TargetHealth]) -> NumberView:
    """A rule's status and each tier's health, from every target's health (one read for all numbers)."""
    states: dict[str, str] = {}
    tiers: list[TierView] = []
    unreachable: list[str] = []
    for index, tier in enumerate(rule.tiers):
        target = probe_target(tier)
        item = health.get(target) if tier.is_judged else None
        if item is not None:
            states[target] = item.state
        text = health_text(item, tier.is_probed) if tier.is_judged else "not probed"
        if tier.is_probed and item is not None and item.state == UNVERIFIED and item.checked_at:
            unreachable.append(target)
        name = "primary" if index == 0 else f"tier {index}"
        tiers.append(TierView(name, tier.target, text, item.state if item is not None else None))
    return NumberView(rule, protection(rule, states), tuple(tiers), tuple(unreachable))


def midnight_utc(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def missed_today(now: datetime) -> dict[str, list[str]]:
    """Number -> "HH:MM caller" of each missed call since midnight UTC, newest first (one Query)."""
    from failover_did.store import call_log

    missed: dict[str, list[str]] = {}
    for call in call_log.all_calls(midnight_utc(now), now):
        if call.missed and not call.test:
            missed.setdefault(call.number, []).append(f"{call.started:%H:%M} {call.caller}")
    return missed
