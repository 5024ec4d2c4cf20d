"""A number's protection status from plain values."""

from __future__ import annotations

import pytest

from failover_did.protection import AT_RISK, FAILING_OVER, PROTECTED, UNPROTECTED, protection
from failover_did.rules.model import Rule, Tier

PBX = Tier("sip:frontdesk@pbx.example.com")
SAME_PBX = Tier("sip:oncall@PBX.example.com:5080")
DR = Tier("sip:oncall@dr.example.net")
MOBILE = Tier("+14155550111")


@pytest.mark.parametrize(
    ("tiers", "health", "status", "why"),
    [
        ((PBX,), {}, UNPROTECTED, "no failover tier"),
        ((PBX, MOBILE), {}, PROTECTED, "+14155550111 takes calls"),
        ((PBX, DR), {}, PROTECTED, "sip:oncall@dr.example.net takes calls"),
        ((PBX, SAME_PBX), {}, AT_RISK, "on the primary's host pbx.example.com"),
        ((PBX, SAME_PBX, DR), {DR.target: "down"}, AT_RISK, "separate route is down"),
        ((PBX, SAME_PBX, DR), {DR.target: "degraded"}, PROTECTED, "dr.example.net"),
        ((PBX, DR), {PBX.target: "down"}, FAILING_OVER, "frontdesk@pbx.example.com is down"),
        ((MOBILE, PBX), {}, PROTECTED, "frontdesk"),
        ((PBX, DR), {PBX.target: "unverified", DR.target: "unverified"}, PROTECTED, "fails (unverified: the prober"),
        ((PBX, DR), {PBX.target: "unverified", DR.target: "down"}, AT_RISK, "separate route is down"),
        ((Tier(PBX.target, probe=False), DR), {PBX.target: "down"}, FAILING_OVER, "is down"),
    ],
)
def test_protection(tiers: tuple[Tier, ...], health: dict[str, str], status: str, why: str) -> None:
    result = protection(Rule("+14155550100", tiers), health)
    assert result.status == status and why in result.why
