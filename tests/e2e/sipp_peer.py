"""A real SIP peer for the tests: sipp (Debian `sip-tester`) answering OPTIONS on 127.0.0.1 from the
scenarios in tests/e2e/sipp/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp")
LOOPBACK = "127.0.0.1"


# ----------------------------------------------------------------------------------------- helpers


def free_port(kind: socket.SocketKind) -> int:
    """A port nothing listens on right now (for `kind`), chosen by the kernel."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_bound(port: int, kind: socket.SocketKind) -> bool:
    """Does a socket hold 127.0.0.1:port (UDP bound, or TCP listening)? Read from /proc/net."""
    table = Path("/proc/net/udp" if kind == socket.SOCK_DGRAM else "/proc/net/tcp")
    wanted = f"0100007F:{port:04X}"
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and (kind == socket.SOCK_DGRAM or fields[3] == "0A"):
            return True
    return False


class SippPeer:
    def __init__(self, scenario: str, transport: str, workdir: Path) -> None:
        assert SIPP is not None
        self.kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.port = free_port(self.kind)
        self.log = workdir / f"sipp-{scenario}-{transport}.err"
        suffix = "" if transport == "udp" else ";transport=tcp"
        self.target = f"sip:failover@{LOOPBACK}:{self.port}{suffix}"
        mode = "u1" if transport == "udp" else "t1"
        argv = [SIPP, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", LOOPBACK, "-p", str(self.port)]
        argv += ["-t", mode, "-nostdin"]
        with self.log.open("wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 10
        while not port_is_bound(self.port, self.kind):
            if self.process.poll() is not None:
                raise RuntimeError(f"sipp exited with {self.process.returncode}: {self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sipp did not bind {LOOPBACK}:{self.port} within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


Peers = Callable[[str, str], SippPeer]


def sipp_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """sipp("options_200", "udp") -> a running sipp UAS for that scenario (one per module and kind)."""
    if SIPP is None:
        if os.environ.get("CI"):
            pytest.fail("sipp is not on PATH; .ci/run installs the Debian package sip-tester")
        pytest.skip("sipp is not on PATH (install the Debian/Ubuntu package sip-tester)")
    workdir = tmp_path_factory.mktemp("sipp")
    peers: dict[tuple[str, str], SippPeer] = {}

    def get(scenario: str, transport: str) -> SippPeer:
        if (scenario, transport) not in peers:
            peers[scenario, transport] = SippPeer(scenario, transport, workdir)
        return peers[scenario, transport]

    yield get
    for peer in peers.values():
        peer.stop()
