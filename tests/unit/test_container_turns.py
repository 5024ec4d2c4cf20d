"""The local stack hands its idle webhook containers to requests in the order the requests came: under load
no request waits much longer than the rest."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from failover_did_cli.containers import _InTurn


def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_freed_container_goes_to_the_request_that_waited_longest() -> None:
    pool = _InTurn()
    container: Any = object()
    served: list[int] = []

    def request(n: int) -> None:
        taken = pool.get(timeout=10)
        served.append(n)
        pool.put(taken)

    threads = []
    for n in range(5):
        thread = threading.Thread(target=request, args=(n,))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=n: len(pool._waiting) == n + 1)  # each is in line before the next comes
    pool.put(container)
    for thread in threads:
        thread.join(timeout=10)
    assert served == [0, 1, 2, 3, 4]


def test_an_idle_container_is_taken_at_once() -> None:
    pool = _InTurn()
    container: Any = object()
    pool.put(container)
    assert pool.get(timeout=0) is container


def test_a_request_that_gives_up_leaves_the_line() -> None:
    pool = _InTurn()
    with pytest.raises(queue.Empty):
        pool.get(timeout=0.05)
    assert not pool._waiting
    container: Any = object()
    pool.put(container)  # goes idle, not to the request that gave up
    assert pool.get(timeout=0) is container


def test_a_request_that_arrives_as_a_container_is_freed_does_not_take_it_from_one_in_line() -> None:
    pool = _InTurn()
    container: Any = object()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get(timeout=10)))
    waiter.start()
    wait_until(lambda: len(pool._waiting) == 1)
    pool.put(container)
    with pytest.raises(queue.Empty):  # the newcomer waits its turn
        pool.get(timeout=0)
    waiter.join(timeout=10)
    assert got == [container]
