"""The OPTIONS request the prober sends, how it reads answers, and how it judges them (the reply table).

The last part talks to a scripted peer on 127.0.0.1 (a plain asyncio socket in the test) to check what
goes on the wire and how provisional, foreign and garbage answers are handled. The probing policy allows
loopback here (ALLOW_PRIVATE_TARGETS=true), as the local stack does.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from typing import cast

import pytest

from failover_did.health.probe import (
    DEFAULT_TIMEOUT,
    BadResponse,
    State,
    build_options,
    check_target,
    classify_http_status,
    classify_sip_status,
    parse_sip_response,
    probe,
)
from failover_did.sipuri import parse_sip_uri

REQUIRED = ("via", "max-forwards", "from", "to", "call-id", "cseq", "contact", "accept", "content-length")


pytestmark = pytest.mark.usefixtures("loopback_allowed")


def parse_request(data: bytes) -> tuple[str, dict[str, str]]:
    """Read a request back independently of the module's parser: (request line, lower-case headers)."""
    assert data.endswith(b"\r\n\r\n"), "a SIP message head ends with an empty CRLF line"
    head = data[:-4].decode("utf-8")
    assert "\n" not in head.replace("\r\n", ""), "every line ends with CRLF, no bare LF"
    assert "\r" not in head.replace("\r\n", ""), "no bare CR"
    request_line, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        assert sep, f"header line {line!r} is not 'Name: value'"
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value
    return request_line, headers


def via_params(via: str) -> dict[str, str]:
    _, *params = via.split(";")
    return {k: v for k, _, v in (p.partition("=") for p in params)}


def build(target: str, **kwargs: str) -> tuple[str, dict[str, str]]:
    data = build_options(parse_sip_uri(target), local_host="10.1.2.3", local_port=40000, **kwargs)
    return parse_request(data)


# ------------------------------------------------------------------------------------- the request


def test_options_request_is_well_formed() -> None:
    request_line, headers = build("sip:pbx.example.com")
    assert request_line == "OPTIONS sip:pbx.example.com SIP/2.0"
    for name in REQUIRED:
        assert name in headers, f"{name} missing"
    assert re.fullmatch(r"SIP/2\.0/UDP 10\.1\.2\.3:40000;branch=z9hG4bK[0-9a-f]+;rport", headers["via"])
    assert headers["max-forwards"] == "70"
    assert re.fullmatch(r"<sip:failover-did@10\.1\.2\.3>;tag=[0-9a-f]{8,}", headers["from"])
    assert headers["to"] == "<sip:pbx.example.com>"
    assert re.fullmatch(r"[0-9a-f]{16,}@10\.1\.2\.3", headers["call-id"])
    assert headers["cseq"] == "1 OPTIONS"
    assert headers["contact"] == "<sip:failover-did@10.1.2.3:40000>"
    assert headers["accept"] == "application/sdp"
    assert headers["user-agent"] == "failover-did"
    assert headers["content-length"] == "0"


def test_every_request_gets_fresh_branch_tag_and_call_id() -> None:
    _, first = build("sip:pbx.example.com")
    _, second = build("sip:pbx.example.com")
    assert via_params(first["via"])["branch"] != via_params(second["via"])["branch"]
    assert first["from"] != second["from"]
    assert first["call-id"] != second["call-id"]
    for headers in (first, second):
        assert via_params(headers["via"])["branch"].startswith("z9hG4bK")
        assert "rport" in via_params(headers["via"])


def test_request_uri_keeps_user_and_explicit_port_but_drops_parameters() -> None:
    request_line, headers = build("sip:100@10.0.0.5:5080;transport=tcp")
    assert request_line == "OPTIONS sip:100@10.0.0.5:5080 SIP/2.0"
    assert headers["to"] == "<sip:100@10.0.0.5:5080>"
    assert headers["via"].startswith("SIP/2.0/TCP 10.1.2.3:40000;")
    assert headers["contact"] == "<sip:failover-did@10.1.2.3:40000;transport=tcp>"


def test_sips_uses_tls_via_and_sips_contact() -> None:
    request_line, headers = build("sips:pbx.example.com")
    assert request_line == "OPTIONS sips:pbx.example.com SIP/2.0"
    assert headers["via"].startswith("SIP/2.0/TLS ")
    assert headers["contact"].startswith("<sips:")


def test_ipv6_hosts_are_bracketed() -> None:
    data = build_options(parse_sip_uri("sip:[2001:db8::1]:5070"), local_host="2001:db8::2", local_port=5555)
    request_line, headers = parse_request(data)
    assert request_line == "OPTIONS sip:[2001:db8::1]:5070 SIP/2.0"
    assert headers["via"].startswith("SIP/2.0/UDP [2001:db8::2]:5555;")
    assert headers["call-id"].endswith("@[2001:db8::2]")


def test_given_ids_are_used_and_a_branch_without_the_magic_cookie_is_refused() -> None:
    _, headers = build("sip:h.example.com", branch="z9hG4bKabc", tag="t1", call_id="c1@x")
    assert via_params(headers["via"])["branch"] == "z9hG4bKabc"
    assert headers["from"].endswith(";tag=t1")
    assert headers["call-id"] == "c1@x"
    with pytest.raises(ValueError, match="z9hG4bK"):
        build("sip:h.example.com", branch="abc")


# -------------------------------------------------------------------------------- reading answers

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 10.1.2.3:40000;branch=z9hG4bKabc;rport=40000;received=1.2.3.4\r\n"
    b"From: <sip:failover-did@10.1.2.3>;tag=t1\r\n"
    b"To: <sip:pbx.example.com>;tag=xyz\r\n"
    b"Call-ID: c1@10.1.2.3\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_parse_a_response() -> None:
    response = parse_sip_response(OK_200)
    assert (response.code, response.phrase) == (200, "OK")
    assert response.header("CALL-ID") == "c1@10.1.2.3"
    assert response.header("cseq") == "1 OPTIONS"
    assert response.top_via_branch == "z9hG4bKabc"
    assert response.body == b"v=0\n"
    assert response.header("x-missing") is None


def test_parse_compact_headers_folding_and_a_multi_word_phrase() -> None:
    response = parse_sip_response(
        b"SIP/2.0 503 Service Unavailable\r\n"
        b"v: SIP/2.0/UDP 10.1.2.3:40000;branch=z9hG4bKone, SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKtwo\r\n"
        b"i: c1@10.1.2.3\r\n"
        b"Subject: a\r\n  folded line\r\n"
        b"l: 0\r\n\r\n"
    )
    assert (response.code, response.phrase) == (503, "Service Unavailable")
    assert response.header("call-id") == "c1@10.1.2.3"
    assert response.top_via_branch == "z9hG4bKone"
    assert response.header("subject") == "a folded line"


def test_status_line_without_a_phrase_is_accepted() -> None:
    assert parse_sip_response(b"SIP/2.0 486\r\nContent-Length: 0\r\n\r\n").code == 486


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"SIP/2.0 OK 200\r\n\r\n",
        b"SIP/2.0 20 OK\r\n\r\n",
        b"SIP/2.0 700 Nope\r\n\r\n",
        b"SIP/2.0 099 Nope\r\n\r\n",
        b"SIP/1.0 200 OK\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 50\r\n\r\nshort",
        b"SIP/2.0 200 OK\r\nCall-ID: no blank line",
    ],
)
def test_garbage_is_a_bad_response(data: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_sip_response(data)


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (200, State.UP),
        (202, State.UP),
        (299, State.UP),
        # any other reply proves a live SIP stack that is dialed
        (300, State.DEGRADED),
        (302, State.DEGRADED),
        (401, State.DEGRADED),
        (403, State.DEGRADED),
        (404, State.DEGRADED),
        (405, State.DEGRADED),
        (407, State.DEGRADED),
        (480, State.DEGRADED),
        (481, State.DEGRADED),
        (486, State.DEGRADED),
        (501, State.DEGRADED),
        (600, State.DEGRADED),
        (603, State.DEGRADED),
        (606, State.DEGRADED),
        # the server says it cannot serve
        (408, State.DOWN),
        (500, State.DOWN),
        (502, State.DOWN),
        (503, State.DOWN),
        (504, State.DOWN),
        (599, State.DOWN),
    ],
)
def test_sip_classification(code: int, state: State) -> None:
    assert classify_sip_status(code) is state


@pytest.mark.parametrize("code", [0, 99, 700, 1000])
def test_sip_classification_refuses_non_codes(code: int) -> None:
    with pytest.raises(ValueError):
        classify_sip_status(code)


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (200, State.UP),
        (204, State.UP),
        (301, State.DEGRADED),
        (302, State.DEGRADED),
        (401, State.DEGRADED),
        (404, State.DEGRADED),
        (500, State.DOWN),
        (503, State.DOWN),
    ],
)
def test_http_classification(code: int, state: State) -> None:
    assert classify_http_status(code) is state


def test_states_are_plain_strings() -> None:
    assert [str(state) for state in State] == ["up", "degraded", "down", "unknown"]
    assert State("down") is State.DOWN and isinstance(State.UP, str)


def test_default_timeout_is_short() -> None:
    assert 0 < DEFAULT_TIMEOUT <= 3


# -------------------------------------------------------------------------------- bad targets


@pytest.mark.parametrize(
    "target",
    [
        "tel:+15551234567",
        "ftp://example.com/",
        "pbx.example.com",
        "",
        "sip:",
        "sip:host;transport=sctp",
        "sips:host;transport=udp",
        "http://",
        "http://host:99999/",
        "http://host name/",
    ],
)
def test_bad_targets_are_refused_by_check_target_and_unknown_when_probed(target: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(target))):
        check_target(target)
    result = asyncio.run(probe(target))
    assert (result.state, result.rtt_ms, result.address) == (State.UNKNOWN, None, None)
    assert repr(target) in result.reason


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        asyncio.run(probe("sip:127.0.0.1", timeout=0))


# ------------------------------------------------------------------- against a scripted peer (UDP)

Responder = Callable[[bytes], list[bytes]]


def answer(request: bytes, status: str, *, call_id: str | None = None, branch: str | None = None) -> bytes:
    """A response to `request` echoing its Via/From/To/Call-ID/CSeq, optionally with other ids."""
    _, headers = parse_request(request)
    via = headers["via"]
    if branch is not None:
        via = re.sub(r"branch=[^;]+", f"branch={branch}", via)
    lines = [
        f"SIP/2.0 {status}",
        f"Via: {via}",
        f"From: {headers['from']}",
        f"To: {headers['to']};tag=peer",
        f"Call-ID: {call_id or headers['call-id']}",
        f"CSeq: {headers['cseq']}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ScriptedPeer(asyncio.DatagramProtocol):
    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.requests.append(data)
        assert self.transport is not None
        for reply in self.respond(data):
            self.transport.sendto(reply, addr)


async def run_udp(respond: Responder, timeout: float = 1.0) -> tuple[str, str, float | None, list[bytes]]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(
        lambda: ScriptedPeer(respond), local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        result = await probe(f"sip:failover@127.0.0.1:{port}", timeout=timeout)
        return result.state.value, result.reason, result.rtt_ms, peer.requests
    finally:
        transport.close()


def test_the_wire_request_is_what_build_options_promises() -> None:
    state, reason, rtt, requests = asyncio.run(run_udp(lambda req: [answer(req, "200 OK")]))
    assert (state, reason) == ("up", "200")
    assert rtt is not None and rtt >= 0
    assert len(requests) == 1
    request_line, headers = parse_request(requests[0])
    assert re.fullmatch(r"OPTIONS sip:failover@127\.0\.0\.1:\d+ SIP/2\.0", request_line)
    for name in REQUIRED:
        assert name in headers
    assert re.fullmatch(r"SIP/2\.0/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK\w+;rport", headers["via"])


def test_two_probes_use_different_branches_on_the_wire() -> None:
    async def twice() -> list[bytes]:
        first = await run_udp(lambda req: [answer(req, "200 OK")])
        second = await run_udp(lambda req: [answer(req, "200 OK")])
        return first[3] + second[3]

    branches = [via_params(parse_request(r)[1]["via"])["branch"] for r in asyncio.run(twice())]
    assert len(branches) == 2 and branches[0] != branches[1]
    assert all(b.startswith("z9hG4bK") for b in branches)


def test_provisional_and_foreign_answers_are_skipped_until_the_final_one() -> None:
    def respond(req: bytes) -> list[bytes]:
        return [
            answer(req, "100 Trying"),
            answer(req, "503 Service Unavailable", call_id="someone-else@10.0.0.9"),
            answer(req, "500 Server Error", branch="z9hG4bKnotours"),
            b"\r\n\r\n",  # keep-alive
            answer(req, "486 Busy Here"),
        ]

    state, reason, _, _ = asyncio.run(run_udp(respond))
    assert (state, reason) == ("degraded", "486")


def test_only_provisional_answers_end_in_a_timeout_with_retransmissions() -> None:
    state, reason, rtt, requests = asyncio.run(run_udp(lambda req: [answer(req, "180 Ringing")], timeout=0.8))
    assert (state, reason, rtt) == ("down", "timeout", None)
    assert len(requests) == 2  # at 0 and T1 = 0.5 s
    assert requests[0] == requests[1], "a retransmission is the same request, same branch and Call-ID"


def test_udp_garbage_is_no_evidence_and_the_real_answer_still_counts() -> None:
    """A datagram that is not a SIP response cannot be tied to a request (anyone can send one)."""
    garbage = b"\x16\x03\x01 this is not SIP"
    state, reason, _, requests = asyncio.run(run_udp(lambda req: [garbage], timeout=0.8))
    assert (state, reason) == ("down", "timeout")
    assert len(requests) == 2, "still retransmitting after the garbage"
    state, reason, _, _ = asyncio.run(run_udp(lambda req: [garbage, answer(req, "404 Not Found")]))
    assert (state, reason) == ("degraded", "404")


# ------------------------------------------------------------------- against a scripted peer (TCP)


Chunks = Callable[[bytes], list[bytes]]


async def run_tcp(chunks: Chunks, timeout: float = 1.0, linger: float = 1.0) -> tuple[str, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            for chunk in chunks(request):
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.01)
            await asyncio.sleep(linger)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await probe(f"sip:127.0.0.1:{port};transport=tcp", timeout=timeout)
        return result.state.value, result.reason
    finally:
        server.close()


def test_tcp_reads_past_provisional_answers_and_bodies_split_across_segments() -> None:
    def chunks(req: bytes) -> list[bytes]:
        final = answer(req, "200 OK").replace(b"Content-Length: 0", b"Content-Length: 10")
        return [b"\r\n\r\n", answer(req, "100 Trying"), final[:25], final[25:] + b"0123", b"456789"]

    assert asyncio.run(run_tcp(chunks)) == ("up", "200")


def test_tcp_garbage_is_down_bad_response() -> None:
    assert asyncio.run(run_tcp(lambda req: [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"])) == (
        "down",
        "error: bad response",
    )


def test_tcp_peer_closing_without_answer_is_down() -> None:
    assert asyncio.run(run_tcp(lambda req: [], linger=0)) == (
        "down",
        "error: connection closed without a response",
    )


def test_secure_true_travels_over_tls_and_keeps_the_sip_scheme() -> None:
    data = build_options(
        parse_sip_uri("sip:desk@pbx.example.com;secure=true"), local_host="10.1.2.3", local_port=40000, transport="tls"
    )
    request_line, headers = parse_request(data)
    assert request_line == "OPTIONS sip:desk@pbx.example.com SIP/2.0"
    assert headers["via"].startswith("SIP/2.0/TLS 10.1.2.3:40000;")
    assert headers["contact"] == "<sip:failover-did@10.1.2.3:40000;transport=tls>"
