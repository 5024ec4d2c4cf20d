"""Where probes go: RFC 3263 (SRV by priority and weight, then A/AAAA), `;secure=true`, the probing
policy on every resolved address, and one bad target never stopping a run.

Names are answered by a DNS server on 127.0.0.1 (tests/local_dns.py, built with dnspython) given to the
prober as its resolver; SIP peers are scripted UDP sockets on 127.0.0.1, HTTP a small server there.
Nothing leaves the loopback interface.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast

import pytest

from failover_did.health import probe as probe_module
from failover_did.health import udp_pool
from failover_did.health.probe import ProbeResult, ProbeTarget, State, probe, probe_many
from failover_did.health.resolve import Hop, NoSuchName, Resolver
from failover_did.settings import settings
from tests.local_dns import LocalDns, Records


@pytest.fixture(autouse=True)
def private_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback is allowed, as the local stack allows it; tests of the refusal switch it off."""
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
    settings.cache_clear()
    yield
    settings.cache_clear()


def forbid_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "false")
    settings.cache_clear()


class Peer(asyncio.DatagramProtocol):
    """A UDP SIP peer on 127.0.0.1 answering every OPTIONS with `status` (echoing the ids)."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.requests.append(data)
        lines = data.decode().split("\r\n")
        echoed = [line for line in lines[1:] if line.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")]
        reply = "\r\n".join([f"SIP/2.0 {self.status}", *echoed, "Content-Length: 0", "", ""])
        assert self.transport is not None
        self.transport.sendto(reply.encode(), addr)


async def start_peer(status: str) -> tuple[asyncio.DatagramTransport, Peer, int]:
    transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Peer(status), local_addr=("127.0.0.1", 0)
    )
    return transport, peer, int(transport.get_extra_info("sockname")[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up_port(peer: Peer) -> int:
    assert peer.transport is not None
    return int(peer.transport.get_extra_info("sockname")[1])


def run_against_peers(
    statuses: list[str], records: Callable[[list[int]], Records], targets: list[str | ProbeTarget], timeout: float = 1.0
) -> tuple[dict[str, ProbeResult], list[Peer], LocalDns]:
    """Start one UDP peer per status, a DNS server whose records may name the peers' ports, probe."""

    async def main() -> tuple[dict[str, ProbeResult], list[Peer], LocalDns]:
        started = [await start_peer(status) for status in statuses]
        ports = [port for _, _, port in started]
        try:
            with LocalDns(records(ports)) as dns_server:
                results = await probe_many(targets, timeout=timeout, dns_resolver=dns_server.resolver())
        finally:
            for transport, _, _ in started:
                transport.close()
        return results, [peer for _, peer, _ in started], dns_server

    return asyncio.run(main())


# ------------------------------------------------------------------------------------------- SRV


def test_srv_records_are_taken_by_priority_then_weight() -> None:
    records: Records = {
        # priority 10 before priority 20 whatever the weights; within a priority the heavier weight first
        "_sip._udp.pbx.test": [
            ("SRV", "20 100 5001 far.pbx.test."),
            ("SRV", "10 10 5002 light.pbx.test."),
            ("SRV", "10 60 5003 heavy.pbx.test."),
        ],
        "far.pbx.test": [("A", "127.0.0.1")],
        "light.pbx.test": [("A", "127.0.0.2")],
        "heavy.pbx.test": [("A", "127.0.0.3"), ("AAAA", "::1")],
    }

    async def hops() -> list[Hop]:
        with LocalDns(records) as dns_server:
            resolver = Resolver(dns_server.resolver(), allow_private=True)
            try:
                return await resolver.sip_hops("pbx.test", None, "udp")
            finally:
                resolver.close()

    assert [str(h) for h in asyncio.run(hops())] == [
        "127.0.0.3:5003",
        "[::1]:5003",
        "127.0.0.2:5002",
        "127.0.0.1:5001",
    ]


def test_a_destination_is_down_only_when_every_srv_target_is() -> None:
    def records(ports: list[int]) -> Records:
        up, down, busy = ports
        closed = free_udp_port()
        return {
            # the preferred target is dead (a closed port, a 503): the next one answers for the destination
            "_sip._udp.pbx.test": [("SRV", f"10 0 {closed} a.pbx.test."), ("SRV", f"20 0 {up} b.pbx.test.")],
            "_sip._udp.dr.test": [("SRV", f"10 0 {down} a.pbx.test."), ("SRV", f"20 0 {busy} b.pbx.test.")],
            "_sip._udp.dead.test": [("SRV", f"10 0 {closed} a.pbx.test."), ("SRV", f"20 0 {down} b.pbx.test.")],
            "a.pbx.test": [("A", "127.0.0.1")],
            "b.pbx.test": [("A", "127.0.0.1")],
        }

    results, (up, _, busy), _ = run_against_peers(
        ["200 OK", "503 Service Unavailable", "486 Busy Here"],
        records,
        ["sip:desk@pbx.test", "sip:oncall@dr.test", "sip:gone@dead.test"],
    )
    pbx, dr, dead = results["sip:desk@pbx.test"], results["sip:oncall@dr.test"], results["sip:gone@dead.test"]
    assert (pbx.state, pbx.reason, pbx.address) == (State.UP, "200", f"127.0.0.1:{up_port(up)}")
    assert (dr.state, dr.reason) == (State.DEGRADED, "486")
    assert dead.state is State.DOWN
    assert busy.requests[0].startswith(b"OPTIONS sip:oncall@dr.test SIP/2.0\r\n"), "the URI as written"


def test_a_connection_moves_to_the_next_srv_target_after_a_refusal() -> None:
    async def main() -> ProbeResult:
        async def answer_200(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = (await reader.readuntil(b"\r\n\r\n")).decode()
            echoed = [line for line in request.split("\r\n")[1:] if line.split(":")[0] in ("Via", "Call-ID", "CSeq")]
            writer.write("\r\n".join(["SIP/2.0 200 OK", *echoed, "Content-Length: 0", "", ""]).encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer_200, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        records: Records = {
            "_sip._tcp.pbx.test": [("SRV", f"10 0 {closed_port} a.pbx.test."), ("SRV", f"20 0 {port} b.pbx.test.")],
            "a.pbx.test": [("A", "127.0.0.1")],
            "b.pbx.test": [("A", "127.0.0.1")],
        }
        try:
            with LocalDns(records) as dns_server:
                return await probe("sip:desk@pbx.test;transport=tcp", timeout=1.0, dns_resolver=dns_server.resolver())
        finally:
            server.close()

    result = asyncio.run(main())
    assert (result.state, result.reason) == (State.UP, "200")


def test_no_srv_record_falls_back_to_the_names_address_on_the_default_port() -> None:
    async def hops() -> tuple[list[Hop], list[Hop], list[tuple[str, str]]]:
        with LocalDns({"pbx.test": [("A", "127.0.0.1"), ("AAAA", "::1")]}) as dns_server:
            resolver = Resolver(dns_server.resolver(), allow_private=True)
            plain = await resolver.sip_hops("pbx.test", None, "udp")
            secure = await resolver.sip_hops("pbx.test", None, "tls")
            resolver.close()
        return plain, secure, dns_server.queries

    plain, secure, queries = asyncio.run(hops())
    assert [str(h) for h in plain] == ["127.0.0.1:5060", "[::1]:5060"], "IPv4 first"
    assert [str(h) for h in secure] == ["127.0.0.1:5061", "[::1]:5061"]
    assert ("_sip._udp.pbx.test", "SRV") in queries and ("_sips._tcp.pbx.test", "SRV") in queries
    assert queries.count(("pbx.test", "A")) == 1, "one lookup per name and type, however often it is needed"


@pytest.mark.parametrize(
    ("target", "service", "port"),
    [
        ("sip:desk@pbx.test;secure=true", "_sips._tcp", 5061),
        ("sip:desk@pbx.test;transport=tls", "_sips._tcp", 5061),
        ("sips:desk@pbx.test", "_sips._tcp", 5061),
        ("sip:desk@pbx.test;transport=tcp", "_sip._tcp", 5060),
        ("sip:desk@pbx.test", "_sip._udp", 5060),
    ],
)
def test_transport_picks_the_srv_service_and_the_default_port(target: str, service: str, port: int) -> None:
    what = probe_module._parse_target(target)
    assert isinstance(what, probe_module._SipTarget)

    async def hops() -> tuple[list[Hop], list[tuple[str, str]]]:
        with LocalDns({"pbx.test": [("A", "127.0.0.1")]}) as dns_server:
            resolver = Resolver(dns_server.resolver(), allow_private=True)
            found = await resolver.sip_hops(what.uri.host, what.uri.port, what.transport)
            resolver.close()
        return found, dns_server.queries

    found, queries = asyncio.run(hops())
    assert queries[0] == (f"{service}.pbx.test", "SRV")
    assert [str(h) for h in found] == [f"127.0.0.1:{port}"]


def test_secure_true_with_a_port_is_tls_to_that_port_without_srv() -> None:
    what = probe_module._parse_target("sip:desk@pbx.test:5070;secure=true")
    assert isinstance(what, probe_module._SipTarget)
    assert (what.transport, what.uri.port) == ("tls", 5070)

    async def hops() -> tuple[list[Hop], list[tuple[str, str]]]:
        with LocalDns({"pbx.test": [("A", "127.0.0.1")]}) as dns_server:
            resolver = Resolver(dns_server.resolver(), allow_private=True)
            found = await resolver.sip_hops("pbx.test", 5070, "tls")
            resolver.close()
        return found, dns_server.queries

    found, queries = asyncio.run(hops())
    assert [str(h) for h in found] == ["127.0.0.1:5070"]
    assert all(kind != "SRV" for _, kind in queries), "a port given means no SRV lookup (RFC 3263 §4.2)"


def test_srv_target_dot_means_no_service() -> None:
    async def hops() -> None:
        with LocalDns({"_sip._udp.pbx.test": [("SRV", "0 0 0 .")]}) as dns_server:
            resolver = Resolver(dns_server.resolver(), allow_private=True)
            try:
                await resolver.sip_hops("pbx.test", None, "udp")
            finally:
                resolver.close()

    with pytest.raises(NoSuchName, match=r"publishes no _sip\._udp service"):
        asyncio.run(hops())


# ------------------------------------------------------------------------------- lookup outcomes


def probe_with(records: Records, target: str, **server: frozenset[str]) -> ProbeResult:
    async def main() -> ProbeResult:
        with LocalDns(records, **server) as dns_server:
            return await probe(target, timeout=0.6, dns_resolver=dns_server.resolver())

    return asyncio.run(main())


def test_a_name_that_does_not_exist_is_down_dns() -> None:
    result = probe_with({}, "sip:desk@nowhere.test")
    assert (result.state, result.reason) == (State.DOWN, "dns")
    result = probe_with({}, "http://nowhere.test/health")
    assert (result.state, result.reason) == (State.DOWN, "dns")


def test_our_lookup_failing_is_unknown_not_down() -> None:
    """A silent or failing name server says nothing about the destination."""
    silent = probe_with({}, "sip:desk@pbx.test:5060", silent=frozenset({"pbx.test"}))
    assert silent.state is State.UNKNOWN
    assert "pbx.test" in silent.reason
    failing = probe_with({}, "sip:desk@pbx.test:5060", servfail=frozenset({"pbx.test"}))
    assert failing.state is State.UNKNOWN
    assert "pbx.test" in failing.reason


# ------------------------------------------------------------------------------------ the policy


@pytest.mark.parametrize(
    ("records", "target", "named"),
    [
        ({}, "sip:169.254.169.254", "169.254.169.254 is a link-local address"),
        ({}, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ({}, "sip:[::ffff:169.254.169.254]:5060", "link-local"),
        ({}, "http://[fe80::1]/", "fe80::1 is a link-local address"),
        ({}, "sip:0.0.0.0", "0.0.0.0 is an unspecified address"),
        ({}, "sip:224.0.0.1;transport=tcp", "224.0.0.1 is a multicast address"),
        ({"meta.test": [("A", "169.254.169.254")]}, "http://meta.test/", "meta.test (169.254.169.254) is a link-local"),
        (
            {
                "_sip._udp.pbx.test": [("SRV", "10 0 5060 ok.pbx.test."), ("SRV", "20 0 5060 meta.pbx.test.")],
                "ok.pbx.test": [("A", "127.0.0.1")],
                "meta.pbx.test": [("A", "169.254.170.2")],
            },
            "sip:pbx.test",
            "meta.pbx.test (169.254.170.2) is a link-local",
        ),
        ({"mixed.test": [("A", "127.0.0.1"), ("A", "169.254.169.254")]}, "sip:mixed.test:5060", "169.254.169.254"),
    ],
)
def test_refused_addresses_are_unknown_naming_the_address(records: Records, target: str, named: str) -> None:
    """Even with private targets allowed, metadata and other never-probed addresses are refused."""
    result = probe_with(records, target)
    assert result.state is State.UNKNOWN
    assert named in result.reason
    assert result.reason.startswith("not probed: ")


def test_loopback_and_private_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_private(monkeypatch)

    async def main() -> tuple[dict[str, ProbeResult], list[bytes]]:
        transport, peer, port = await start_peer("200 OK")
        try:
            with LocalDns({"lan.test": [("A", "10.1.2.3")]}) as dns_server:
                results = await probe_many(
                    [f"sip:127.0.0.1:{port}", "http://2130706433/", "sip:lan.test:5060", "http://0x7f.1:8080/"],
                    timeout=0.5,
                    dns_resolver=dns_server.resolver(),
                )
        finally:
            transport.close()
        return results, peer.requests

    results, requests = asyncio.run(main())
    assert {r.state for r in results.values()} == {State.UNKNOWN}
    reasons = [r.reason for r in results.values()]
    assert "127.0.0.1 is a loopback address" in reasons[0]
    assert "2130706433 (127.0.0.1) is a loopback address" in reasons[1], (
        "a numeric spelling is read as the C resolver would"
    )
    assert "lan.test (10.1.2.3) is a private or reserved address" in reasons[2]
    assert "(127.0.0.1) is a loopback address" in reasons[3]
    assert requests == [], "nothing was sent to a refused address"


# ----------------------------------------------------------------------------------------- HTTP


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Host")))
        code = {"/ok": 200, "/moved": 302, "/auth": 401, "/fail": 500}.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_http_connects_to_the_checked_address_and_sends_the_name_as_host(http_port: int) -> None:
    base = f"http://health.test:{http_port}"
    targets = [f"{base}/ok", f"{base}/moved", f"{base}/auth", f"{base}/fail"]

    async def main() -> dict[str, ProbeResult]:
        with LocalDns({"health.test": [("A", "127.0.0.1")]}) as dns_server:
            return await probe_many(targets, timeout=1.0, dns_resolver=dns_server.resolver())

    results = asyncio.run(main())
    assert [(results[t].state, results[t].reason) for t in targets] == [
        (State.UP, "200"),
        (State.DEGRADED, "302"),
        (State.DEGRADED, "401"),
        (State.DOWN, "500"),
    ]
    assert results[f"{base}/ok"].address == f"127.0.0.1:{http_port}"
    assert sorted(_Recorder.seen) == sorted(
        (p, f"health.test:{http_port}") for p in ("/ok", "/moved", "/auth", "/fail")
    )
    assert len(_Recorder.seen) == 4, "the redirect (to the metadata address) was not followed"


# ------------------------------------------------------------------------ one target never stops a run


def test_targets_that_cannot_be_probed_are_unknown_and_the_run_goes_on() -> None:
    bad = ["http://a..b/", "http://host/café", "http://" + "a" * 2000 + "/", "sip:" + "b" * 2000, "tel:+15551234567"]

    async def main() -> dict[str, ProbeResult]:
        transport, _, port = await start_peer("200 OK")
        try:
            return await probe_many([*bad, f"sip:127.0.0.1:{port}"], timeout=1.0)
        finally:
            transport.close()

    results = asyncio.run(main())
    assert [results[t].state for t in bad] == [State.UNKNOWN] * len(bad)
    for target in bad:
        assert results[target].reason.startswith("cannot probe ")
        assert len(results[target].reason) < 400, "a long target is cut short in the reason"
    assert [r.state for t, r in results.items() if t not in bad] == [State.UP]


def test_an_error_inside_the_prober_is_that_targets_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    real = probe_module.sip_over_stream

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(probe_module, "sip_over_stream", broken)
    assert real is not broken

    async def main() -> dict[str, ProbeResult]:
        transport, _, port = await start_peer("200 OK")
        try:
            return await probe_many([f"sip:127.0.0.1:{port}", f"sip:127.0.0.1:{port};transport=tcp"], timeout=1.0)
        finally:
            transport.close()

    results = asyncio.run(main())
    states = {t.rsplit(";", 1)[-1]: (r.state, r.reason) for t, r in results.items()}
    assert states["transport=tcp"] == (State.UNKNOWN, "error inside the prober: simulated bug")
    assert [s for t, s in states.items() if t != "transport=tcp"] == [(State.UP, "200")]


def test_many_targets_on_one_name_share_its_lookups() -> None:
    def records(ports: list[int]) -> Records:
        return {
            "_sip._udp.pbx.test": [("SRV", f"10 0 {ports[0]} host.pbx.test.")],
            "host.pbx.test": [("A", "127.0.0.1")],
        }

    targets: list[str | ProbeTarget] = [f"sip:user{i}@pbx.test" for i in range(20)]
    results, (peer,), dns_server = run_against_peers(["200 OK"], records, targets)
    assert {r.state for r in results.values()} == {State.UP}
    assert len(peer.requests) == 20
    assert sorted(dns_server.queries) == [
        ("_sip._udp.pbx.test", "SRV"),
        ("host.pbx.test", "A"),
        ("host.pbx.test", "AAAA"),
    ]


# ------------------------------------------------------------------------------------- socket budget


def test_udp_probes_share_a_few_sockets() -> None:
    """500 UDP probes in flight at once hold no more than the pool's sockets (a Lambda has 1,024 files)."""

    async def main() -> tuple[int, int, dict[str, ProbeResult]]:
        silent = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
        for sock in silent:
            sock.bind(("127.0.0.1", 0))
        targets = [f"sip:u{i}@127.0.0.1:{silent[i % 5].getsockname()[1]}" for i in range(500)]
        before = peak = len(os.listdir("/proc/self/fd"))
        running = asyncio.ensure_future(probe_many(targets, timeout=0.6))
        while not running.done():
            peak = max(peak, len(os.listdir("/proc/self/fd")))
            await asyncio.sleep(0.01)
        for sock in silent:
            sock.close()
        return before, peak, running.result()

    before, peak, results = asyncio.run(main())
    assert {(r.state, r.reason) for r in results.values()} == {(State.DOWN, "timeout")}
    assert peak - before <= udp_pool.SOCKETS_PER_FAMILY + 2


def test_connections_in_flight_are_bounded_by_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight = 0
    most = 0
    real = probe_module.sip_over_stream

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await real(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(probe_module, "sip_over_stream", counted)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes each handshake; nobody ever answers
        port = listener.getsockname()[1]
        targets = [f"sip:u{i}@127.0.0.1:{port};transport=tcp" for i in range(12)]
        results = asyncio.run(probe_many(targets, timeout=0.2, concurrency=3))
    assert {(r.state, r.reason) for r in results.values()} == {(State.DOWN, "timeout")}
    assert most == 3, "three connections at a time, never more"


def test_localhost_is_loopback_without_asking_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 6761: `localhost` names loopback; the DNS server (which has no /etc/hosts) is never asked."""

    async def main() -> tuple[ProbeResult, ProbeResult, list[bytes]]:
        transport, peer, port = await start_peer("200 OK")
        try:
            with LocalDns({}) as dns_server:
                monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
                settings.cache_clear()
                allowed = await probe(f"sip:desk@localhost:{port}", timeout=0.5, dns_resolver=dns_server.resolver())
                forbid_private(monkeypatch)
                refused = await probe(f"sip:desk@pbx.localhost:{port}", timeout=0.5, dns_resolver=dns_server.resolver())
        finally:
            transport.close()
            settings.cache_clear()
        return allowed, refused, peer.requests

    allowed, refused, requests = asyncio.run(main())
    assert allowed.state is State.UP
    assert refused.state is State.UNKNOWN
    assert "loopback" in refused.reason
    assert len(requests) == 1
