"""The local stack's health checker against real peers (sipp): a primary the prober has reached and that
then dies is marked down and skipped; a primary the prober has never reached is unverified, still dialed
first, told once, and `failover-did status` says what to do about it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, start_local, stop_local
from tests.e2e.sipp_peer import LOOPBACK, SIPP, SippPeer, free_port

pytestmark = pytest.mark.e2e


def first_dial(stack: RunningStack, number: str) -> str:
    reply = stack.simulator().call(number).start()
    assert reply.dial is not None, reply.body
    return reply.dial.targets[0]


def wait_for(stack: RunningStack, what: str, done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds  # a few 0.5 s intervals plus the webhook's 5 s health cache
    while not done():
        assert time.monotonic() < deadline, f"{what}:\n{stack.output()}"
        time.sleep(0.5)


def test_a_reached_primary_that_dies_is_skipped_and_a_never_reached_one_is_still_dialed(tmp_path: Path) -> None:
    if SIPP is None:
        pytest.skip("sipp is not on PATH (install the Debian/Ubuntu package sip-tester)")
    live = SippPeer("options_200", "udp", tmp_path)  # answers now, dies later
    never = f"sip:desk@{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}"  # nothing ever listens: refused
    rules = f"""
numbers:
  "+14155550100":
    primary: {{target: "{live.target}", timeout: 15}}
    failover: [{{target: "+14155550111"}}]
  "+14155550200":
    primary: {{target: "{never}", timeout: 15}}
    failover: [{{target: "+14155550222"}}]
"""
    stack = start_local(tmp_path, "--health-interval", "0.5", rules=rules)
    try:
        wait_for(stack, "the live primary reached", lambda: live.target + "  [up]" in stack.cli("status").stdout)
        live.stop()
        wait_for(stack, "the dead primary skipped", lambda: first_dial(stack, "+14155550100") == "+14155550111")
        assert f"health: {live.target} unreachable (refused) - +14155550100 primary" in stack.output()

        assert first_dial(stack, "+14155550200") == never  # never reached: no evidence, dialed as usual
        output = stack.output()
        assert output.count(f"health: {never} unverified (refused) - +14155550200 primary") == 1
        assert never + " unreachable" not in output
        status = stack.cli("status", "+14155550200")
        assert status.returncode == 0, status.stderr
        assert "UNVERIFIED: the prober cannot reach it (refused)" in status.stdout
        assert "Allow the probe's source address in the PBX firewall" in status.stdout
    finally:
        live.stop()
        stop_local(stack)
