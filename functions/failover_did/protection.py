"""How well a number is protected, from its rule and its destinations' health. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from failover_did.health.hysteresis import DOWN, UNVERIFIED
from failover_did.routing import probe_target
from failover_did.rules.model import Rule, Tier
from failover_did.sipuri import SipUriError, host_of

PROTECTED = "Protected"
UNPROTECTED = "Unprotected"
AT_RISK = "At risk"
FAILING_OVER = "Failing over"


@dataclass(frozen=True)
class Protection:
    status: str
    why: str


def sip_host(tier: Tier) -> str | None:
    try:
        return host_of(tier.target)
    except SipUriError:  # a stored target was validated when applied; never let status fail on one
        return None


def protection(rule: Rule, health: Mapping[str, str]) -> Protection:
    """Protected: a failover tier on a separate route is not down (an unverified one counts: it is dialed).
    Unprotected: no failover tier. At risk: every failover tier shares the primary's host, or is down.
    Failing over: the primary is down."""

    def down(tier: Tier) -> bool:
        return health.get(probe_target(tier)) == DOWN

    if not rule.failover:
        return Protection(UNPROTECTED, "no failover tier")
    if down(rule.primary):
        return Protection(FAILING_OVER, f"the primary {rule.primary.target} is down; calls go to the next tier")
    host = sip_host(rule.primary)
    separate = [t for t in rule.failover if host is None or sip_host(t) != host]
    usable = [t for t in separate if not down(t)]
    if usable:
        unverified = (
            " (unverified: the prober cannot reach it)" if health.get(probe_target(usable[0])) == UNVERIFIED else ""
        )
        return Protection(PROTECTED, f"{usable[0].target} takes calls if the primary fails{unverified}")
    if not separate:
        return Protection(AT_RISK, f"every failover tier is on the primary's host {host}")
    return Protection(AT_RISK, "every failover tier on a separate route is down")
