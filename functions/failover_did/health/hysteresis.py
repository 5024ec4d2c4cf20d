"""How a destination's health is judged: the one evidence model (README "How health is judged"). Pure: no I/O.

Evidence is a probe reply, or a live call's leg (answered, or failed in a way that says the destination
is unwell). A probe that could not be made (UNKNOWN) is never evidence, and neither is a test call.

* A target starts UNVERIFIED: the prober has never reached it. Probe failures then say more about where
  the prober stands (a PBX that admits only Twilio's addresses) than about the destination, so they do not
  count: the target is dialed as usual, and people are told once that the prober cannot reach it.
* Once a probe has reached it, down after `down_after` failed checks in a row and back after `up_after`
  good ones, as SIP proxies keep it. Live failures count as failed checks at any time; an answered live
  leg ends a failure streak and counts toward coming back.
* A target that went down on live failures alone and that no probe can confirm again (unverified, or
  `probe: false`) is dialed again after LIVE_DOWN_HOLD: one more live failure puts it back down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from failover_did.settings import DEFAULT_DOWN_AFTER, DEFAULT_UP_AFTER, Settings

# Probe results (the prober's states) and health states.
UP, DEGRADED, DOWN = "up", "degraded", "down"
UNKNOWN = "unknown"  # a probe result only: the probe could not be made; never evidence
UNVERIFIED = "unverified"  # a health state only: the prober has never reached the target
REACHED = frozenset({UP, DEGRADED})
LIVE_DOWN_HOLD = timedelta(minutes=10)

# What a change tells people (event kinds).
UNREACHABLE = "unreachable"  # went down
RECOVERED = "recovered"  # came back from down
CANNOT_REACH = "unverified"  # the prober cannot reach a target it never reached (told once)
VERIFIED = "verified"  # a target the prober could not reach answered a probe at last
RETRYING = "retrying"  # down on live failures, nothing can probe it: dialed again after the hold
DISAGREEMENT = "disagreement"  # a live call was answered while the target is marked down (told once)


@dataclass(frozen=True)
class Thresholds:
    down_after: int = DEFAULT_DOWN_AFTER
    up_after: int = DEFAULT_UP_AFTER

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        """HEALTH_DOWN_AFTER / HEALTH_UP_AFTER, as the settings read and checked them."""
        return cls(down_after=settings.health_down_after, up_after=settings.health_up_after)


@dataclass(frozen=True)
class TargetHealth:
    target: str
    state: str = UNVERIFIED  # up | degraded | down | unverified
    failures: int = 0  # failed checks in a row (probes once reached, and live failures)
    successes: int = 0  # good checks in a row
    reason: str = ""  # of the last check that counted: a SIP/HTTP code, timeout, refused, dns ...
    checked_at: str = ""  # ISO time of the last check
    since: str = ""  # ISO time the state last changed
    reached_at: str = ""  # when a probe first got an answer; "" while unverified
    answered_at: str = ""  # the last live call answered there (kept to within a few minutes)
    told_unverified: bool = False  # "the prober cannot reach it" was told for this episode
    told_disagreement: bool = False  # "answered while down" was told for this down episode

    @property
    def reached(self) -> bool:
        return bool(self.reached_at)


@dataclass(frozen=True)
class Transition:
    """News about a destination: it went down, came back, cannot be reached by the prober, ..."""

    target: str
    became: str  # the state after the change
    reason: str
    at: str
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", UNREACHABLE if self.became == DOWN else RECOVERED)


def observe(
    health: TargetHealth, result: str, reason: str, at: str, thresholds: Thresholds | None = None
) -> tuple[TargetHealth, Transition | None]:
    """Fold one probe result ("up", "degraded", "down" or "unknown") into `health`."""
    thresholds = thresholds or Thresholds()
    if result in REACHED:
        return _reached(health, result, reason, at, thresholds)
    if result != DOWN or not health.reached:
        # Not evidence: the probe could not be made, or the prober has never reached the target.
        if health.reached or health.told_unverified:
            return (health, None) if result != DOWN else (replace(health, reason=reason, checked_at=at), None)
        told = replace(health, told_unverified=True, reason=reason, checked_at=at, since=health.since or at)
        return told, Transition(health.target, health.state, reason, at, CANNOT_REACH)
    return _failed(health, reason, at, thresholds)


def observe_live_failure(
    health: TargetHealth, reason: str, at: str, thresholds: Thresholds | None = None
) -> tuple[TargetHealth, Transition | None]:
    """A live call's leg failed in a way that says the destination is unwell: a failed check, whether or
    not the prober ever reached it (the call went the way every call goes)."""
    return _failed(health, reason, at, thresholds or Thresholds())


def observe_live_success(
    health: TargetHealth, at: str, thresholds: Thresholds | None = None
) -> tuple[TargetHealth, Transition | None]:
    """A live call's leg was answered: the end of any failure streak, and a good check toward coming back
    from down. While down, the first answer is also news: probes and live calls disagree."""
    thresholds = thresholds or Thresholds()
    new = replace(health, failures=0, answered_at=at)
    if health.state != DOWN:
        return new, None
    successes = health.successes + 1
    new = replace(new, successes=successes, checked_at=at)
    if successes >= thresholds.up_after:
        became = UP if health.reached else UNVERIFIED
        new = replace(new, state=became, since=at, told_disagreement=False, reason="answered")
        return new, Transition(health.target, became, "answered", at, RECOVERED)
    if not health.told_disagreement:
        new = replace(new, told_disagreement=True)
        return new, Transition(health.target, DOWN, health.reason, at, DISAGREEMENT)
    return new, None


def expire(
    health: TargetHealth, at: str, thresholds: Thresholds | None = None, hold: timedelta = LIVE_DOWN_HOLD
) -> tuple[TargetHealth, Transition | None]:
    """A target down on live failures that no probe has ever reached is dialed again after `hold`, one
    failure away from down (nothing else could ever bring it back)."""
    thresholds = thresholds or Thresholds()
    if health.state != DOWN or health.reached or not health.since or _age(health.since, at) < hold:
        return health, None
    new = replace(
        health,
        state=UNVERIFIED,
        since=at,
        failures=thresholds.down_after - 1,
        successes=0,
        told_disagreement=False,
    )
    return new, Transition(health.target, UNVERIFIED, health.reason, at, RETRYING)


def judge(
    health: TargetHealth, result: str | None, reason: str, at: str, thresholds: Thresholds | None = None
) -> tuple[TargetHealth, Transition | None]:
    """One checker run's verdict on a target: a live-only down past its hold is let go first, then the
    probe result (None: the target is not probed) is folded in."""
    held, retry = expire(health, at, thresholds)
    if result is None or (retry is not None and result not in REACHED):
        return held, retry
    after, news = observe(held, result, reason, at, thresholds)
    return after, news or retry


def _reached(
    health: TargetHealth, result: str, reason: str, at: str, thresholds: Thresholds
) -> tuple[TargetHealth, Transition | None]:
    successes = health.successes + 1
    reached_at = health.reached_at or at
    new = replace(health, failures=0, successes=successes, reason=reason, checked_at=at, reached_at=reached_at)
    if health.state == UNVERIFIED:
        new = replace(new, state=result, since=at, told_unverified=False)
        news = Transition(health.target, result, reason, at, VERIFIED) if health.told_unverified else None
        return new, news
    if health.state == DOWN:
        if successes < thresholds.up_after:
            return new, None
        new = replace(new, state=result, since=at, told_disagreement=False)
        return new, Transition(health.target, result, reason, at, RECOVERED)
    if result != health.state:
        return replace(new, state=result, since=at), None  # up <-> degraded: not news
    return new, None


def _failed(
    health: TargetHealth, reason: str, at: str, thresholds: Thresholds
) -> tuple[TargetHealth, Transition | None]:
    failures = health.failures + 1
    new = replace(health, failures=failures, successes=0, reason=reason, checked_at=at)
    if health.state == DOWN or failures < thresholds.down_after:
        return new, None
    new = replace(new, state=DOWN, since=at, told_disagreement=False)
    return new, Transition(health.target, DOWN, reason, at, UNREACHABLE)


def _age(since: str, at: str) -> timedelta:
    return _parse(at) - _parse(since)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
