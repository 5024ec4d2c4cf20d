"""How `failover-did status` words one tier's health under the evidence model."""

from __future__ import annotations

import pytest

from failover_did.health.hysteresis import DEGRADED, DOWN, UNVERIFIED, UP, TargetHealth
from failover_did.status_view import health_text

T = "sip:desk@pbx.example.com"
SINCE = "2026-11-28T10:02:00Z"


@pytest.mark.parametrize(
    ("health", "probed", "text"),
    [
        (None, True, "not checked yet"),
        (None, False, "not probed (live calls only)"),
        (TargetHealth(T, UP, reason="200"), True, "up"),
        (TargetHealth(T, DEGRADED, reason="403"), True, "degraded (403)"),
        (TargetHealth(T, DOWN, reason="503", since=SINCE), True, "DOWN since 10:02Z (503)"),
        (
            TargetHealth(T, DOWN, reason="503", since=SINCE, answered_at="2026-11-28T10:05:00Z"),
            True,
            "DOWN since 10:02Z (503); but a live call was answered 10:05Z",
        ),
        (
            TargetHealth(T, UNVERIFIED, reason="timeout", checked_at=SINCE),
            True,
            "UNVERIFIED: the prober cannot reach it (timeout)",
        ),
        (TargetHealth(T, UNVERIFIED), True, "not checked yet"),
        (TargetHealth(T, UNVERIFIED, answered_at=SINCE), False, "not probed (live calls only); last answered 10:02Z"),
        (
            TargetHealth(T, DOWN, reason="503", since=SINCE),
            False,
            "DOWN since 10:02Z (503); not probed: dialed again 10 min after going down",
        ),
    ],
)
def test_health_text(health: TargetHealth | None, probed: bool, text: str) -> None:
    assert health_text(health, probed) == text
