"""A destination's health with hysteresis, as SIP proxies keep it: down only after `down_after` failed
checks in a row, back only after `up_after` good ones. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

UP, DEGRADED, DOWN, UNKNOWN = "up", "degraded", "down", "unknown"
DEFAULT_DOWN_AFTER = 2
DEFAULT_UP_AFTER = 2


@dataclass(frozen=True)
class Thresholds:
    down_after: int = DEFAULT_DOWN_AFTER
    up_after: int = DEFAULT_UP_AFTER

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Thresholds:
        """HEALTH_DOWN_AFTER / HEALTH_UP_AFTER, each at least 1."""
        return cls(
            down_after=max(1, int(environ.get("HEALTH_DOWN_AFTER") or DEFAULT_DOWN_AFTER)),
            up_after=max(1, int(environ.get("HEALTH_UP_AFTER") or DEFAULT_UP_AFTER)),
        )


@dataclass(frozen=True)
class TargetHealth:
    target: str
    state: str = UNKNOWN  # up | degraded | down | unknown (never checked, or not enough checks yet)
    failures: int = 0  # failed checks in a row
    successes: int = 0  # answered checks in a row
    reason: str = ""  # of the last check: a SIP/HTTP code, timeout, refused, dns ...
    checked_at: str = ""  # ISO time of the last check
    since: str = ""  # ISO time the state last changed


@dataclass(frozen=True)
class Transition:
    """A change worth telling people about: a destination went down, or came back."""

    target: str
    became: str  # "down" or the state it recovered to
    reason: str
    at: str

    @property
    def kind(self) -> str:
        return "unreachable" if self.became == DOWN else "recovered"


def observe(
    health: TargetHealth, result: str, reason: str, at: str, thresholds: Thresholds | None = None
) -> tuple[TargetHealth, Transition | None]:
    """Fold one check result ("up", "degraded" or "down") into `health`."""
    thresholds = thresholds or Thresholds()
    if result == DOWN:
        failures = health.failures + 1
        state = DOWN if failures >= thresholds.down_after else health.state
        new = replace(health, failures=failures, successes=0, reason=reason, checked_at=at)
    else:
        successes = health.successes + 1
        state = result if health.state != DOWN or successes >= thresholds.up_after else DOWN
        new = replace(health, failures=0, successes=successes, reason=reason, checked_at=at)
    if state == health.state:
        return new, None
    new = replace(new, state=state, since=at)
    if state == DOWN:
        return new, Transition(health.target, DOWN, reason, at)
    if health.state == DOWN:
        return new, Transition(health.target, state, reason, at)
    return new, None  # unknown -> up, up <-> degraded: not news
