"""The local stack's health checker against real peers: a dead primary is marked down within a few
health intervals and the next call goes straight to tier 1, while a live primary (sipp) is still dialed
first."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, start_local, stop_local
from tests.e2e.sipp_peer import LOOPBACK, Peers, free_port, sipp_peers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sipp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    yield from sipp_peers(tmp_path_factory)


def first_dial(stack: RunningStack, number: str) -> str:
    reply = stack.simulator().call(number).start()
    assert reply.dial is not None, reply.body
    return reply.dial.targets[0]


def test_dead_primary_is_skipped_and_live_primary_still_rings_first(sipp: Peers, tmp_path: Path) -> None:
    live = sipp("options_200", "udp").target
    dead = f"sip:desk@{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}"  # nothing listens: ICMP port unreachable
    rules = f"""
numbers:
  "+14155550100":
    primary: {{target: "{live}", timeout: 15}}
    failover: [{{target: "+14155550111"}}]
  "+14155550200":
    primary: {{target: "{dead}", timeout: 15}}
    failover: [{{target: "+14155550222"}}]
"""
    stack = start_local(tmp_path, "--health-interval", "0.5", rules=rules)
    try:
        assert first_dial(stack, "+14155550200") == dead  # not judged yet: one failure is not down
        deadline = time.monotonic() + 30  # a few 0.5 s intervals plus the webhook's 5 s health cache
        while first_dial(stack, "+14155550200") == dead:
            assert time.monotonic() < deadline, stack.output()
            time.sleep(0.5)
        assert first_dial(stack, "+14155550200") == "+14155550222"
        assert first_dial(stack, "+14155550100") == live
        output = stack.output()
        assert f"health: {dead} unreachable (refused) - +14155550200 primary" in output
        assert live + " unreachable" not in output
    finally:
        stop_local(stack)
