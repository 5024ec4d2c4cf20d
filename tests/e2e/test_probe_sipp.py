"""The prober against real peers on 127.0.0.1: sipp (Debian `sip-tester`) answering OPTIONS over UDP and
TCP with the codes of the reply table, a TLS peer (Python's ssl: this sipp build has no TLS), closed and
silent ports, names from a DNS server on 127.0.0.1, and a small HTTP server. Also the CLI's exit codes.

The sipp peers are started once per module from the scenarios in tests/e2e/sipp/; tests that need one
are skipped (with the reason) when `sipp` is not on PATH. Nothing here leaves the loopback interface:
every name is answered by tests/local_dns.py. Loopback targets are allowed (ALLOW_PRIVATE_TARGETS=true),
as in the local stack.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from failover_did.health import streams
from failover_did.health.probe import ProbeResult, ProbeTarget, State, probe_many, probe_sync
from failover_did.settings import settings
from failover_did_cli.probe_cmd import probe as probe_command
from tests.e2e.sipp_peer import LOOPBACK, Peers, free_port, sipp_peers
from tests.e2e.tls_peer import Certificates, TlsPeer, make_certificates
from tests.local_dns import LocalDns

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_allowed")]


@pytest.fixture(scope="module")
def sipp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    yield from sipp_peers(tmp_path_factory)


def with_names(targets: list[str | ProbeTarget], names: dict[str, str], timeout: float = 1.0) -> dict[str, ProbeResult]:
    """probe_many with `names` (name -> IPv4 address) answered by a DNS server on 127.0.0.1."""

    async def main() -> dict[str, ProbeResult]:
        with LocalDns({name: [("A", address)] for name, address in names.items()}) as dns_server:
            return await probe_many(targets, timeout=timeout, dns_resolver=dns_server.resolver())

    return asyncio.run(main())


# ------------------------------------------------------------------------------------- sipp peers


@pytest.mark.parametrize(
    ("scenario", "transport", "state", "reason"),
    [
        ("options_200", "udp", State.UP, "200"),
        ("options_503", "udp", State.DOWN, "503"),
        ("options_500", "udp", State.DOWN, "500"),
        ("options_486", "udp", State.DEGRADED, "486"),
        # any answer proves a live SIP stack: a gateway without OPTIONS, a border controller refusing us
        ("options_501", "udp", State.DEGRADED, "501"),
        ("options_603", "udp", State.DEGRADED, "603"),
        ("options_403", "udp", State.DEGRADED, "403"),
        ("options_200", "tcp", State.UP, "200"),
        ("options_503", "tcp", State.DOWN, "503"),
        ("options_500", "tcp", State.DOWN, "500"),
        ("options_404", "tcp", State.DEGRADED, "404"),
        ("options_403", "tcp", State.DEGRADED, "403"),
        ("options_603", "tcp", State.DEGRADED, "603"),
    ],
)
def test_sipp_answers(sipp: Peers, scenario: str, transport: str, state: State, reason: str) -> None:
    peer = sipp(scenario, transport)
    result = probe_sync(peer.target)
    assert (result.state, result.reason) == (state, reason), peer.log.read_text()
    assert result.target == peer.target
    assert result.address == f"{LOOPBACK}:{peer.port}"
    assert result.rtt_ms is not None and result.rtt_ms >= 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_repeated_and_concurrent_probes_of_one_sipp_peer(sipp: Peers, transport: str) -> None:
    peer = sipp("options_200", transport)
    for _ in range(5):
        assert probe_sync(peer.target).state is State.UP
    # distinct targets (user part) on the same peer, all in flight at once
    targets = [peer.target.replace("sip:failover@", f"sip:user{i}@") for i in range(25)]
    results = asyncio.run(probe_many(targets))
    assert sorted(results) == sorted(targets)
    assert {(r.state, r.reason) for r in results.values()} == {(State.UP, "200")}


def test_probe_many_over_a_mix_of_sipp_peers(sipp: Peers) -> None:
    named = sipp("options_200", "udp")
    expected = {
        sipp("options_200", "udp").target: State.UP,
        sipp("options_503", "udp").target: State.DOWN,
        sipp("options_486", "udp").target: State.DEGRADED,
        sipp("options_200", "tcp").target: State.UP,
        f"sip:desk@pbx.test:{named.port}": State.UP,
        f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}": State.DOWN,
        "sip:x@nonexistent.test": State.DOWN,
        "sip:169.254.169.254": State.UNKNOWN,
    }
    results = with_names(list(expected), {"pbx.test": LOOPBACK})
    assert {target: result.state for target, result in results.items()} == expected


# --------------------------------------------------------------------------- no peer / silent peer


def test_closed_udp_port_is_refused() -> None:
    """The ICMP port-unreachable reaches the shared, unconnected socket through its error queue."""
    result = probe_sync(f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}")
    assert (result.state, result.reason, result.rtt_ms) == (State.DOWN, "refused", None)


def test_closed_tcp_port_is_refused() -> None:
    result = probe_sync(f"sip:{LOOPBACK}:{free_port(socket.SOCK_STREAM)};transport=tcp")
    assert (result.state, result.reason) == (State.DOWN, "refused")


def test_silent_udp_peer_times_out_after_retransmitting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        target = f"sip:{LOOPBACK}:{silent.getsockname()[1]}"
        result = probe_sync(target)
        assert (result.state, result.reason, result.rtt_ms) == (State.DOWN, "timeout", None)
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
        result = probe_sync(f"sip:{LOOPBACK}:{listener.getsockname()[1]};transport=tcp", timeout=0.5)
    assert (result.state, result.reason) == (State.DOWN, "timeout")


def test_unresolvable_host_is_dns() -> None:
    targets: list[str | ProbeTarget] = ["sip:x@nonexistent.test", "sip:x@nonexistent.test;transport=tcp"]
    results = with_names(targets, {})
    assert [(r.state, r.reason) for r in results.values()] == [(State.DOWN, "dns")] * 2


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
        result = probe_sync(f"sips:{LOOPBACK}:{listener.getsockname()[1]}", timeout=1.0)
        thread.join(timeout=2)
    assert (result.state, result.reason) == (State.DOWN, "tls")


# -------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A leaf for pbx.test and 127.0.0.1, signed by a private CA that no system trusts."""
    return make_certificates(tmp_path_factory.mktemp("tls"), ["pbx.test", LOOPBACK])


@pytest.fixture
def trusting(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the private CA the trust store (OpenSSL reads SSL_CERT_FILE), as a public CA would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    streams.tls_context.cache_clear()
    yield
    streams.tls_context.cache_clear()


@pytest.mark.parametrize("form", ["sips:desk@{host}:{port}", "sip:desk@{host}:{port};secure=true"])
def test_tls_with_an_untrusted_certificate_is_degraded_not_down(certificates: Certificates, form: str) -> None:
    """A failed certificate check says nothing about whether Twilio can reach the PBX."""
    with TlsPeer(certificates) as peer:
        result = probe_sync(form.format(host=LOOPBACK, port=peer.port))
    assert (result.state, result.reason, result.rtt_ms) == (State.DEGRADED, "certificate not trusted", None)
    assert peer.requests == [], "no request goes over a connection whose certificate failed the check"


@pytest.mark.parametrize("form", ["sips:desk@{host}:{port}", "sip:desk@{host}:{port};secure=true"])
def test_tls_verify_false_takes_a_self_signed_pbx_as_it_is(certificates: Certificates, form: str) -> None:
    with TlsPeer(certificates) as peer:
        result = probe_sync(ProbeTarget(form.format(host=LOOPBACK, port=peer.port), tls_verify=False))
    assert (result.state, result.reason) == (State.UP, "200")
    (request,) = peer.requests
    assert request.startswith(b"OPTIONS " + form.split(";")[0].format(host=LOOPBACK, port=peer.port).encode())
    assert b"\r\nVia: SIP/2.0/TLS " in request, ";secure=true travels over TLS, and the Via says so"


def test_trusted_certificate_is_checked_against_the_name_not_the_address(
    certificates: Certificates, trusting: None
) -> None:
    """The connection goes to the resolved 127.0.0.1, the certificate must name pbx.test (the URI's host)."""
    with TlsPeer(certificates) as peer:
        good, wrong = f"sips:desk@pbx.test:{peer.port}", f"sips:desk@other.test:{peer.port}"
        results = with_names([good, wrong], {"pbx.test": LOOPBACK, "other.test": LOOPBACK})
    assert (results[good].state, results[good].reason) == (State.UP, "200")
    assert (results[wrong].state, results[wrong].reason) == (State.DEGRADED, "certificate not trusted")


def test_https_health_url_checks_the_certificate_unless_told_not_to(certificates: Certificates) -> None:
    with TlsPeer(certificates) as peer:
        url = f"https://{LOOPBACK}:{peer.port}/health"
        checked = probe_sync(url)
        unchecked = probe_sync(ProbeTarget(url, tls_verify=False))
    assert (checked.state, checked.reason) == (State.DEGRADED, "certificate not trusted")
    assert (unchecked.state, unchecked.reason) == (State.UP, "200")


def test_same_target_twice_with_different_tls_verify_is_checked(certificates: Certificates) -> None:
    with TlsPeer(certificates) as peer:
        target = f"sips:{LOOPBACK}:{peer.port}"
        results = asyncio.run(probe_many([ProbeTarget(target, tls_verify=False), target]))
    assert (results[target].state, results[target].reason) == (State.DEGRADED, "certificate not trusted")


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
        ("/missing", State.DEGRADED, "404"),  # something answers, but not as a health URL should
        ("/moved", State.DEGRADED, "302"),  # redirects are reported, not followed
    ],
)
def test_http_target(http_base: str, path: str, state: State, reason: str) -> None:
    result = probe_sync(http_base + path)
    assert (result.state, result.reason) == (state, reason)
    assert result.rtt_ms is not None


def test_http_closed_port_is_refused_and_unknown_host_is_dns() -> None:
    assert probe_sync(f"http://{LOOPBACK}:{free_port(socket.SOCK_STREAM)}/health").reason == "refused"
    result = with_names(["http://nonexistent.test/health"], {})["http://nonexistent.test/health"]
    assert (result.state, result.reason) == (State.DOWN, "dns")


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
    outcome = CliRunner().invoke(probe_command, [peer.target, "--timeout", "1.5", "--allow-private"])
    assert outcome.exit_code == exit_code, outcome.output
    line = outcome.output.strip()
    assert line.startswith(line_start)
    assert line.endswith(f" ms  {peer.target}")


def test_cli_down_without_answer_prints_a_dash_for_the_rtt() -> None:
    target = f"sip:{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}"
    outcome = CliRunner().invoke(probe_command, [target, "--allow-private"])
    assert outcome.exit_code == 1
    assert outcome.output == f"down  refused  -  {target}\n"


def test_cli_unknown_when_the_policy_refuses_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "false")
    settings.cache_clear()
    outcome = CliRunner().invoke(probe_command, ["sip:127.0.0.1:5060"])
    assert outcome.exit_code == 4
    assert outcome.output == (
        "unknown  not probed: 127.0.0.1 is a loopback address (the checker's own machine)  -  sip:127.0.0.1:5060\n"
    )
    metadata = CliRunner().invoke(probe_command, ["http://169.254.169.254/latest/meta-data/", "--allow-private"])
    assert metadata.exit_code == 4, "link-local is refused even with --allow-private"
    assert "169.254.169.254 is a link-local address" in metadata.output


def test_cli_no_tls_verify(certificates: Certificates) -> None:
    with TlsPeer(certificates) as peer:
        target = f"sip:desk@{LOOPBACK}:{peer.port};secure=true"
        checked = CliRunner().invoke(probe_command, [target, "--allow-private"])
        unchecked = CliRunner().invoke(probe_command, [target, "--allow-private", "--no-tls-verify"])
    assert (checked.exit_code, unchecked.exit_code) == (3, 0)
    assert checked.output.startswith("degraded  certificate not trusted  -  ")
    assert unchecked.output.startswith("up  200  ")


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
        [sys.executable, "-c", code, peer.target, "--allow-private"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("degraded  486  ")
    bad = subprocess.run([sys.executable, "-c", code, "tel:911"], capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2
    assert "cannot probe 'tel:911'" in bad.stderr
