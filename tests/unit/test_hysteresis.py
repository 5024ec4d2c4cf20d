"""The evidence model: unverified until a probe reaches the target, then down after N failures in a row and
up after M successes; live calls count both ways; a probe that could not be made never counts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from failover_did.health.hysteresis import (
    DEGRADED,
    DOWN,
    UNKNOWN,
    UNVERIFIED,
    UP,
    TargetHealth,
    Thresholds,
    expire,
    judge,
    observe,
    observe_live_failure,
    observe_live_success,
)
from failover_did.settings import load

T = "sip:pbx.example.com"
REACHED = TargetHealth(T, UP, reached_at="2026-11-28T09:00:00Z", since="2026-11-28T09:00:00Z")
LIVE_FAIL, LIVE_OK = "live-fail", "live-ok"


def minute(i: int) -> str:
    return f"2026-11-28T10:{i:02d}:00Z"


def run(
    results: list[str], thresholds: Thresholds | None = None, start: TargetHealth = REACHED
) -> tuple[TargetHealth, list[str]]:
    """Fold probe results (and live evidence) one a minute; the news as "kind@t<minute>"."""
    health, news = start, []
    for i, result in enumerate(results):
        at = minute(i)
        if result == LIVE_FAIL:
            health, transition = observe_live_failure(health, "503", at, thresholds)
        elif result == LIVE_OK:
            health, transition = observe_live_success(health, at, thresholds)
        else:
            health, transition = observe(health, result, "503" if result == DOWN else "200", at, thresholds)
        if transition:
            news.append(f"{transition.kind}@t{i}")
    return health, news


def test_one_failure_is_not_down() -> None:
    health, news = run([UP, DOWN])
    assert health.state == UP and health.failures == 1 and news == []


def test_two_failures_in_a_row_are_down_once() -> None:
    health, news = run([UP, DOWN, DOWN, DOWN, DOWN])
    assert health.state == DOWN and health.since == minute(2) and news == ["unreachable@t2"]
    assert health.failures == 4 and health.reason == "503"


def test_a_target_never_reached_stays_unverified_and_is_told_once() -> None:
    health, news = run([DOWN, DOWN, DOWN, UNKNOWN, DOWN], start=TargetHealth(T))
    assert health.state == UNVERIFIED and health.failures == 0 and news == ["unverified@t0"]
    assert health.reason == "503" and health.since == minute(0) and not health.reached


def test_once_reached_probe_failures_count() -> None:
    health, news = run([DOWN, UP, DOWN, DOWN], start=TargetHealth(T))
    assert health.state == DOWN and news == ["unverified@t0", "verified@t1", "unreachable@t3"]
    assert health.reached_at == minute(1)
    quiet, quiet_news = run([UP, DOWN, DOWN], start=TargetHealth(T))
    assert quiet.state == DOWN and quiet_news == ["unreachable@t2"]  # reached before it was ever told


def test_a_probe_that_could_not_be_made_is_never_evidence() -> None:
    health, news = run([DOWN, UNKNOWN, UNKNOWN, DOWN])
    assert health.failures == 2 and health.state == DOWN and news == ["unreachable@t3"]
    down, _ = run([DOWN, DOWN])
    assert run([UNKNOWN, UNKNOWN, UNKNOWN], start=down)[0] == down


def test_live_failures_count_even_when_the_prober_never_reached_it() -> None:
    health, news = run([DOWN, LIVE_FAIL, DOWN, LIVE_FAIL], start=TargetHealth(T))
    assert health.state == DOWN and news == ["unverified@t0", "unreachable@t3"]


def test_an_answered_live_leg_ends_a_failure_streak() -> None:
    health, news = run([DOWN, LIVE_OK, DOWN, LIVE_OK, LIVE_FAIL])
    assert health.state == UP and health.failures == 1 and news == []
    assert health.answered_at == minute(3)


def test_answered_while_down_is_told_once_then_brings_it_back() -> None:
    health, news = run([DOWN, DOWN, LIVE_OK, DOWN, DOWN, LIVE_OK, LIVE_OK])
    assert news == ["unreachable@t1", "disagreement@t2", "recovered@t6"]
    assert health.state == UP and health.since == minute(6)


def test_a_live_only_down_is_dialed_again_after_the_hold() -> None:
    down, _ = run([LIVE_FAIL, LIVE_FAIL], start=TargetHealth(T))
    assert down.state == DOWN and down.since == minute(1)
    assert expire(down, "2026-11-28T10:10:59Z") == (down, None)
    again, news = expire(down, "2026-11-28T10:11:00Z")
    assert news is not None and news.kind == "retrying" and again.state == UNVERIFIED
    assert observe_live_failure(again, "503", "2026-11-28T10:12:00Z")[0].state == DOWN  # one more failure
    reached_down, _ = run([DOWN, DOWN])
    assert expire(reached_down, "2026-11-28T11:00:00Z") == (reached_down, None)  # probes will bring it back


def test_judge_lets_a_held_down_go_before_the_probe_result() -> None:
    down, _ = run([LIVE_FAIL, LIVE_FAIL], start=TargetHealth(T))
    later = "2026-11-28T10:30:00Z"
    after, news = judge(down, DOWN, "timeout", later)
    assert after.state == UNVERIFIED and news is not None and news.kind == "retrying"
    answered, verified = judge(down, UP, "200", later)
    assert answered.state == UP and verified is not None and answered.reached
    assert judge(REACHED, None, "", later) == (REACHED, None)


def test_recovery_needs_successes_in_a_row() -> None:
    health, news = run([DOWN, DOWN, UP, DOWN, UP, UP])
    assert health.state == UP and news == ["unreachable@t1", "recovered@t5"]
    flapping, flap_news = run([DOWN, DOWN, UP, DOWN, UP, DOWN, UP])
    assert flapping.state == DOWN and flap_news == ["unreachable@t1"]


def test_degraded_counts_as_reachable() -> None:
    health, news = run([UP, DEGRADED])
    assert health.state == DEGRADED and news == []
    back, back_news = run([DOWN, DOWN, DEGRADED, DEGRADED])
    assert back.state == DEGRADED and back_news == ["unreachable@t1", "recovered@t3"]


def test_thresholds_are_configurable() -> None:
    assert run([DOWN], Thresholds(down_after=1))[0].state == DOWN
    health, news = run([DOWN, DOWN, DOWN, UP, UP, UP], Thresholds(down_after=3, up_after=3))
    assert health.state == UP and news == ["unreachable@t2", "recovered@t5"]


def test_thresholds_from_the_settings() -> None:
    assert Thresholds.of(load({})) == Thresholds(2, 2)
    assert Thresholds.of(load({"HEALTH_DOWN_AFTER": "5", "HEALTH_UP_AFTER": "1"})) == Thresholds(5, 1)


@given(st.lists(st.sampled_from([UP, DEGRADED, DOWN, UNKNOWN]), max_size=40), st.integers(1, 4), st.integers(1, 4))
def test_news_alternates_and_matches_the_state(results: list[str], down_after: int, up_after: int) -> None:
    health, news = run(results, Thresholds(down_after, up_after))
    results = [r for r in results if r != UNKNOWN]
    kinds = [n.split("@")[0] for n in news]
    assert all(a != b for a, b in itertools.pairwise(kinds))  # never the same news twice in a row
    if kinds:
        assert (kinds[-1] == "unreachable") == (health.state == DOWN)
    tail = 0
    for r in reversed(results):
        if r != DOWN:
            break
        tail += 1
    assert health.failures == tail
    if tail >= down_after:
        assert health.state == DOWN
