"""The prober against real peers on 127.0.0.1: sipp (Debian `sip-tester`) answering OPTIONS over UDP and
TCP, closed and silent ports, an unresolvable name, and a small HTTP server. Also the CLI's exit codes.

The sipp peers are started once per module from the scenarios in tests/e2e/sipp/; tests that need one
are skipped (with the reason) when `sipp` is not on PATH. Nothing here leaves the loopback interface:
the DNS cases use the reserved .invalid TLD.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from failover_did.health.probe import DEFAULT_TIMEOUT, ProbeResult, State, probe_many, probe_sync
from failover_did_cli.probe_cmd import probe as probe_command
from tests.e2e.sipp_peer import LOOPBACK, Peers, free_port, sipp_peers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sipp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    yield from sipp_peers(tmp_path_factory)


def timed(target: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[ProbeResult, float]:
    started = time.perf_counter()
    result = probe_sync(target, timeout)
    return result, time.perf_counter() - started


# ------------------------------------------------------------------------------------- sipp peers


@pytest.mark.parametrize(
    ("scenario", "transport", "state", "reason"),
    [
        ("options_200", "udp", State.UP, "200"),
        ("options_503", "udp", State.DOWN, "503"),
        ("options_486", "udp", State.DEGRADED, "486"),
        ("options_200", "tcp", State.UP, "200"),
        ("options_503", "tcp", State.DOWN, "503"),
        ("options_404", "tcp", State.DEGRADED, "404"),
    ],
)
def test_sipp_answers(sipp: Peers, scenario: str, transport: str, state: State, reason: str) -> None:
    peer = sipp(scenario, transport)
    result, elapsed = timed(peer.target)
    assert (result.state, result.reason) == (state, reason), peer.log.read_text()
    assert result.target == peer.target
    assert result.rtt_ms is not None and 0 <= result.rtt_ms < 500
    assert elapsed < 0.5, "a loopback answer comes back at once, before any retransmission"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_repeated_and_concurrent_probes_of_one_sipp_peer(sipp: Peers, transport: str) -> None:
    peer = sipp("options_200", transport)
    for _ in range(5):
        assert probe_sync(peer.target).state is State.UP
    # distinct targets (user part) on the same peer, all in flight at once
    targets = [peer.target.replace("sip:failover@", f"sip:user{i}@") for i in range(25)]
    started = time.perf_counter()
    results = asyncio.run(probe_many(targets))
    assert time.perf_counter() - started < 1.0
    assert sorted(results) == sorted(targets)
    assert {(r.state, r.reason) for r in results.values()} == {(State.UP, "200")}


def test_probe_many_over_a_mix_of_sipp_peers(sipp: Peers) -> None:
    expected = {
        sipp("options_200", "udp").target: State.UP,
        sipp("options_503", "udp").target: State.DOWN,
        sipp("options_486", "udp").target: State.DEGRADED,
        sipp("options_200", "tcp").target: State.UP,
        f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}": State.DOWN,
        "sip:x@nonexistent.invalid": State.DOWN,
    }
    results = asyncio.run(probe_many(expected))
    assert {target: result.state for target, result in results.items()} == expected


# --------------------------------------------------------------------------- no peer / silent peer


def test_closed_udp_port_is_refused_at_once() -> None:
    result, elapsed = timed(f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}")
    assert (result.state, result.reason, result.rtt_ms) == (State.DOWN, "refused", None)
    assert elapsed < 0.25, "the ICMP port-unreachable arrives on the connected socket before any resend"


def test_closed_tcp_port_is_refused_at_once() -> None:
    result, elapsed = timed(f"sip:{LOOPBACK}:{free_port(socket.SOCK_STREAM)};transport=tcp")
    assert (result.state, result.reason) == (State.DOWN, "refused")
    assert elapsed < 0.25


def test_silent_udp_peer_times_out_after_retransmitting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        target = f"sip:{LOOPBACK}:{silent.getsockname()[1]}"
        result, elapsed = timed(target)
        assert (result.state, result.reason, result.rtt_ms) == (State.DOWN, "timeout", None)
        assert DEFAULT_TIMEOUT - 0.05 <= elapsed < DEFAULT_TIMEOUT + 0.3
        silent.setblocking(False)
        received = []
        while True:
            try:
                received.append(silent.recv(65535))
            except BlockingIOError:
                break
    # sent at 0, T1 = 0.5 s and 1.5 s (interval doubling); the next would be at 3.5 s, past the timeout
    assert len(received) == 3
    assert len(set(received)) == 1, "retransmissions repeat the request unchanged (same branch, Call-ID)"
    assert received[0].startswith(f"OPTIONS sip:{LOOPBACK}:".encode())


def test_silent_tcp_peer_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(4)  # the kernel completes the handshake; nobody ever reads or answers
        result, elapsed = timed(f"sip:{LOOPBACK}:{listener.getsockname()[1]};transport=tcp", timeout=0.5)
    assert (result.state, result.reason) == (State.DOWN, "timeout")
    assert 0.45 <= elapsed < 0.8


@pytest.mark.parametrize("target", ["sip:x@nonexistent.invalid", "sip:x@nonexistent.invalid;transport=tcp"])
def test_unresolvable_host_is_dns(target: str) -> None:
    result, elapsed = timed(target)
    assert (result.state, result.reason) == (State.DOWN, "dns")
    assert elapsed <= DEFAULT_TIMEOUT + 0.2


def test_tls_handshake_with_a_plain_peer_is_tls() -> None:
    """A sips: probe against something that does not speak TLS fails the handshake: "tls"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(4)

        def greet() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"SIP/2.0 400 Not TLS\r\nContent-Length: 0\r\n\r\n")
                conn.recv(4096)

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        result, _ = timed(f"sips:{LOOPBACK}:{listener.getsockname()[1]}", timeout=1.0)
        thread.join(timeout=2)
    assert (result.state, result.reason) == (State.DOWN, "tls")


# ------------------------------------------------------------------------------------------- HTTP


HTTP_CODES = {"/ok": 200, "/fail": 503, "/moved": 302, "/missing": 404}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = HTTP_CODES.get(self.path, 404)
        body = b"fine\n" if code == 200 else b"not fine\n"
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("path", "state", "reason"),
    [
        ("/ok", State.UP, "200"),
        ("/fail", State.DOWN, "503"),
        ("/missing", State.DOWN, "404"),
        ("/moved", State.DOWN, "302"),  # redirects are reported, not followed
    ],
)
def test_http_target(http_base: str, path: str, state: State, reason: str) -> None:
    result, elapsed = timed(http_base + path)
    assert (result.state, result.reason) == (state, reason)
    assert result.rtt_ms is not None
    assert elapsed < 0.5


def test_http_closed_port_is_refused_and_unknown_host_is_dns() -> None:
    assert probe_sync(f"http://{LOOPBACK}:{free_port(socket.SOCK_STREAM)}/health").reason == "refused"
    assert probe_sync("http://nonexistent.invalid/health").reason == "dns"


def test_https_against_plain_http_is_tls(http_base: str) -> None:
    result = probe_sync(http_base.replace("http://", "https://") + "/ok", timeout=1.0)
    assert (result.state, result.reason) == (State.DOWN, "tls")


def test_http_and_sip_targets_together(http_base: str, sipp: Peers) -> None:
    targets = [http_base + "/ok", http_base + "/fail", sipp("options_200", "udp").target]
    results = asyncio.run(probe_many(targets, timeout=1.0))
    assert [results[t].state for t in targets] == [State.UP, State.DOWN, State.UP]


# --------------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("scenario", "transport", "exit_code", "line_start"),
    [
        ("options_200", "udp", 0, "up  200  "),
        ("options_503", "udp", 1, "down  503  "),
        ("options_486", "udp", 3, "degraded  486  "),
        ("options_404", "tcp", 3, "degraded  404  "),
    ],
)
def test_cli_exit_codes_follow_the_state(
    sipp: Peers, scenario: str, transport: str, exit_code: int, line_start: str
) -> None:
    peer = sipp(scenario, transport)
    outcome = CliRunner().invoke(probe_command, [peer.target, "--timeout", "1.5"])
    assert outcome.exit_code == exit_code, outcome.output
    line = outcome.output.strip()
    assert line.startswith(line_start)
    assert line.endswith(f" ms  {peer.target}")


def test_cli_down_without_answer_prints_a_dash_for_the_rtt() -> None:
    target = f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}"
    outcome = CliRunner().invoke(probe_command, [target])
    assert outcome.exit_code == 1
    assert outcome.output == f"down  refused  -  {target}\n"


@pytest.mark.parametrize("target", ["tel:+15551234567", "sip:host;transport=sctp", "pbx.example.com"])
def test_cli_bad_target_is_a_usage_error(target: str) -> None:
    outcome = CliRunner().invoke(probe_command, [target])
    assert outcome.exit_code == 2
    assert "TARGET" in outcome.output and repr(target) in outcome.output


def test_cli_bad_timeout_is_a_usage_error() -> None:
    outcome = CliRunner().invoke(probe_command, ["sip:127.0.0.1", "--timeout", "0"])
    assert outcome.exit_code == 2


def test_cli_exit_code_reaches_the_shell(sipp: Peers) -> None:
    """Run the command in a real process (standalone click), as the console script does."""
    peer = sipp("options_486", "udp")
    code = "from failover_did_cli.probe_cmd import probe; probe(prog_name='failover-did probe')"
    done = subprocess.run(
        [sys.executable, "-c", code, peer.target], capture_output=True, text=True, timeout=20, check=False
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("degraded  486  ")
    bad = subprocess.run([sys.executable, "-c", code, "tel:911"], capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2
    assert "cannot probe 'tel:911'" in bad.stderr
