"""The health state machine: down after N failures in a row, up after M successes, news only on change."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from failover_did.health.hysteresis import DEGRADED, DOWN, UNKNOWN, UP, TargetHealth, Thresholds, observe

T = "sip:pbx.example.com"


def run(results: list[str], thresholds: Thresholds | None = None) -> tuple[TargetHealth, list[str]]:
    health, news = TargetHealth(T), []
    for i, result in enumerate(results):
        health, transition = observe(health, result, "503" if result == DOWN else "200", f"t{i}", thresholds)
        if transition:
            news.append(f"{transition.kind}@t{i}")
    return health, news


def test_one_failure_is_not_down() -> None:
    health, news = run([UP, DOWN])
    assert health.state == UP and health.failures == 1 and news == []


def test_two_failures_in_a_row_are_down_once() -> None:
    health, news = run([UP, DOWN, DOWN, DOWN, DOWN])
    assert health.state == DOWN and health.since == "t2" and news == ["unreachable@t2"]
    assert health.failures == 4 and health.reason == "503"


def test_never_checked_target_goes_down_after_the_threshold() -> None:
    health, news = run([DOWN, DOWN])
    assert health.state == DOWN and news == ["unreachable@t1"]
    assert run([DOWN])[0].state == UNKNOWN


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


def test_thresholds_from_environment() -> None:
    assert Thresholds.from_env({}) == Thresholds(2, 2)
    assert Thresholds.from_env({"HEALTH_DOWN_AFTER": "5", "HEALTH_UP_AFTER": "0"}) == Thresholds(5, 1)


@given(st.lists(st.sampled_from([UP, DEGRADED, DOWN]), max_size=40), st.integers(1, 4), st.integers(1, 4))
def test_news_alternates_and_matches_the_state(results: list[str], down_after: int, up_after: int) -> None:
    health, news = run(results, Thresholds(down_after, up_after))
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
