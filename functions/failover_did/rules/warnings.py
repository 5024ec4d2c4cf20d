"""What is valid in accepted rules but worth a warning: the one list `rules validate` prints.

Also the ring-time arithmetic, which the validator uses to refuse a cascade that rings far too long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from failover_did.rules.model import Rule
from failover_did.rules.targets import sip_host_of
from failover_did.rules.text import show
from failover_did.rules.urls import private_address_warning, probed_host

# Twilio adds about this much to each <Dial timeout>; callers' networks give up after 90-180 s.
TWILIO_RING_EXTRA = 5
RING_WARN_SECONDS = 120
RING_MAX_SECONDS = 300


def rule_warnings(rules: Mapping[str, Rule], *, private_allowed: bool) -> list[str]:
    """Everything valid but worth saying about accepted rules, one line each. With `private_allowed`
    false, loopback and private addresses (accepted where the deployment allows them) are named too."""
    warnings = same_route_warnings(rules) + ring_time_warnings(rules)
    if not private_allowed:
        warnings += private_address_warnings(rules)
    return warnings


def same_route_warnings(rules: Mapping[str, Rule]) -> list[str]:
    """Rules whose every failover tier ends on the primary's own SIP host: valid, but failover then
    offers no resilience (the seed's "both DIDs terminate to the same PBX")."""
    warnings: list[str] = []
    for number, rule in sorted(rules.items()):
        primary_host = sip_host_of(rule.primary.target)
        if primary_host is None or not rule.failover:
            continue
        if all(sip_host_of(tier.target) == primary_host for tier in rule.failover):
            warnings.append(
                f'numbers."{number}": every failover tier is on the primary\'s host {primary_host}; if that '
                "PBX fails, failover offers no resilience - put a tier on a separate route or data center"
            )
    return warnings


def ring_time_warnings(rules: Mapping[str, Rule]) -> list[str]:
    """Cascades that ring unanswered longer than callers typically wait."""
    warnings: list[str] = []
    for number, rule in sorted(rules.items()):
        timeouts = [tier.timeout for tier in rule.tiers]
        if ring_seconds(timeouts) > RING_WARN_SECONDS:
            warnings.append(
                f'numbers."{number}": {ring_text(timeouts)}, more than {RING_WARN_SECONDS} s; callers\' '
                "networks typically give up after 90-180 s, so a caller may hang up before the last tiers "
                "or the final message"
            )
    return warnings


def private_address_warnings(rules: Mapping[str, Rule]) -> list[str]:
    """Probed hosts written as loopback or private addresses."""
    warnings: list[str] = []
    for number, rule in sorted(rules.items()):
        labels = ["primary", *(f"failover[{i}]" for i in range(len(rule.failover)))]
        for label, tier in zip(labels, rule.tiers, strict=True):
            for field, value in (("target", tier.target), ("health", tier.health)):
                host = probed_host(value) if value else None
                warning = private_address_warning(host) if host else None
                if value and warning:
                    warnings.append(f'numbers."{number}".{label}.{field}: {show(value)}: {warning}')
    return warnings


def ring_seconds(timeouts: Iterable[int]) -> int:
    """How long a cascade can ring unanswered: each tier's timeout plus what Twilio adds to it."""
    return sum(t + TWILIO_RING_EXTRA for t in timeouts)


def ring_text(timeouts: list[int]) -> str:
    """The ring time and how it is made up, for a message."""
    parts = " + ".join(f"{t}+{TWILIO_RING_EXTRA}" for t in timeouts)
    return (
        f"the cascade can ring unanswered for {ring_seconds(timeouts)} s ({parts} s: each tier's timeout "
        f"plus about {TWILIO_RING_EXTRA} s that Twilio adds)"
    )
