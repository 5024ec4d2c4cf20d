"""Probe a destination once and judge it up, degraded or down.

Two kinds of target:

* SIP URIs (``sip:``/``sips:``, ``;transport=udp|tcp|tls``): send an OPTIONS request (RFC 3261 §11) and
  classify the final response. 2xx is up; other 3xx/4xx mean the peer is alive but would not take a call
  as dialled (degraded); 408, 5xx, 6xx, no answer, a refused port or an unresolvable host are down.
  UDP retransmits at T1 = 0.5 s doubling (capped at T2 = 4 s) until the timeout, as a non-INVITE client
  transaction does (§17.1.2.2), and uses a *connected* socket so an ICMP port-unreachable shows up at once
  as "refused". TCP and TLS send once and read one final response. The Request-URI and To are the
  target as written minus its parameters (``sip:[user@]host[:port]``), so a PBX that routes OPTIONS by
  user answers for that extension; responses are matched by Call-ID and the top Via branch.
* HTTP(S) URLs: ``GET`` with a minimal HTTP/1.1 client on asyncio streams. 2xx is up, anything else down
  with the status code as the reason. Redirects are not followed: a health URL should answer for itself,
  and a 3xx from it is reported (down, reason "301" etc.) rather than chased.

TLS (``sips:``, ``transport=tls``, ``https:``) verifies the peer's certificate against the system trust
store and the host name; a failed handshake or verification is down with reason "tls".

Every probe, including name resolution and connecting, is bounded by one ``timeout`` (a lookup still
unanswered when it runs out is reported as "dns", not "timeout"). ``rtt_ms`` is the time from sending
the request (the first transmission, for UDP) to the final answer; ``None`` when there was no answer.
Standard library only, so it runs in AWS Lambda as is.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import secrets
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from failover_did.sipuri import SipUri, SipUriError, parse_sip_uri

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "BadResponse",
    "ProbeResult",
    "SipResponse",
    "State",
    "build_options",
    "check_target",
    "classify_http_status",
    "classify_sip_status",
    "parse_sip_response",
    "probe",
    "probe_many",
    "probe_sync",
]

DEFAULT_TIMEOUT = 2.0
"""Seconds one probe may take in all (DNS, connect, retransmissions, answer)."""
DEFAULT_CONCURRENCY = 500
"""At most this many probes in flight in `probe_many` (each holds one socket)."""
T1 = 0.5
"""RFC 3261 round-trip estimate: the first UDP retransmission interval."""
T2 = 4.0
"""RFC 3261 cap on the non-INVITE retransmission interval."""
USER_AGENT = "failover-did"
MAX_MESSAGE = 65_535
"""Largest response (headers and body) read; a longer one is a bad response."""

_BAD_RESPONSE = "error: bad response"
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2})(?: (.*))?$")
_HTTP_STATUS_LINE = re.compile(r"^HTTP/1\.[01] ([1-9][0-9]{2})(?: (.*))?$")
# RFC 3261 §7.3.3 compact header forms we may meet in a response
_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to", "m": "contact"}


class State(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class ProbeResult:
    target: str
    state: State
    reason: str  # "200", "503", "timeout", "refused", "dns", "tls" or "error: ..."
    rtt_ms: float | None


class BadResponse(ValueError):
    """What the peer sent back is not a SIP (or HTTP) response we can read."""


@dataclass(frozen=True)
class SipResponse:
    code: int
    phrase: str
    headers: tuple[tuple[str, str], ...]  # (lower-case long name, value) in order of appearance
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def top_via_branch(self) -> str | None:
        via = self.header("via")
        if via is None:
            return None
        first = via.split(",", 1)[0]
        for param in first.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "branch":
                return value.strip()
        return None


# --------------------------------------------------------------------------------------------- judging


def classify_sip_status(code: int) -> State:
    """2xx up; 408, 5xx and 6xx down; any other 3xx/4xx (alive, would not take the call) degraded."""
    if not 100 <= code <= 699:
        raise ValueError(f"{code} is not a SIP status code")
    if 200 <= code < 300:
        return State.UP
    if code == 408 or code >= 500:
        return State.DOWN
    return State.DEGRADED


def classify_http_status(code: int) -> State:
    return State.UP if 200 <= code < 300 else State.DOWN


# ------------------------------------------------------------------------------------------ SIP messages


def _token() -> str:
    return secrets.token_hex(8)


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _request_uri(uri: SipUri) -> str:
    """`scheme:[user@]host[:port]`, without URI parameters (the transport goes in the Via)."""
    user = f"{uri.user}@" if uri.user else ""
    port = f":{uri.port}" if uri.port is not None else ""
    return f"{uri.scheme}:{user}{uri.host_for_uri}{port}"


def build_options(
    uri: SipUri,
    *,
    local_host: str,
    local_port: int,
    branch: str | None = None,
    tag: str | None = None,
    call_id: str | None = None,
) -> bytes:
    """An OPTIONS request for `uri` as sent from `local_host`:`local_port`; fresh branch/tag/Call-ID."""
    branch = branch or f"z9hG4bK{_token()}"
    if not branch.startswith("z9hG4bK"):
        raise ValueError("an RFC 3261 branch starts with the magic cookie z9hG4bK")
    tag = tag or _token()
    local = _host_for_uri(local_host)
    call_id = call_id or f"{_token()}{_token()}@{local}"
    target = _request_uri(uri)
    transport = uri.transport.upper()
    contact_params = "" if uri.transport == "udp" else f";transport={uri.transport}"
    contact_scheme = "sips" if uri.scheme == "sips" else "sip"
    lines = [
        f"OPTIONS {target} SIP/2.0",
        f"Via: SIP/2.0/{transport} {local}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <{contact_scheme}:{USER_AGENT}@{local}>;tag={tag}",
        f"To: <{target}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <{contact_scheme}:{USER_AGENT}@{local}:{local_port}{contact_params}>",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _parse_head(head: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split a message head (no blank line) into its start line and (lower-case long name, value) pairs."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise BadResponse("not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start, rest = lines[0], lines[1:]
    headers: list[tuple[str, str]] = []
    for line in rest:
        if not line:
            continue
        if line[0] in " \t":  # obsolete line folding (RFC 3261 §7.3.1)
            if not headers:
                raise BadResponse("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or any(c.isspace() for c in name):
            raise BadResponse(f"malformed header line {line!r}")
        headers.append((_COMPACT.get(name, name), value.strip()))
    return start, tuple(headers)


def _content_length(headers: tuple[tuple[str, str], ...]) -> int:
    value = next((v for k, v in headers if k == "content-length"), None)
    if value is None:
        return 0
    if not value.isdigit() or int(value) > MAX_MESSAGE:
        raise BadResponse(f"bad Content-Length {value!r}")
    return int(value)


def _sip_status(start: str) -> tuple[int, str]:
    match = _STATUS_LINE.match(start.strip())
    if not match:
        raise BadResponse(f"bad status line {start[:80]!r}")
    return int(match.group(1)), (match.group(2) or "").strip()


def parse_sip_response(data: bytes) -> SipResponse:
    """Parse one whole SIP response (as a UDP datagram carries it); raise BadResponse if it is not one."""
    data = data.lstrip(b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not sep:
        raise BadResponse("no blank line after the headers")
    start, headers = _parse_head(head)
    code, phrase = _sip_status(start)
    length = _content_length(headers)
    if len(body) < length:
        raise BadResponse("body shorter than Content-Length")
    return SipResponse(code, phrase, headers, body[:length])


def _matches(response: SipResponse, call_id: str, branch: str) -> bool:
    """Is this the answer to our request? Same Call-ID, and our branch in the top Via if it has one."""
    if response.header("call-id") != call_id:
        return False
    got = response.top_via_branch
    return got is None or got == branch


# ----------------------------------------------------------------------------------------------- probing


class _Refused(Exception):
    """The peer's port is closed (TCP RST or ICMP port unreachable)."""


class _DnsFailure(Exception):
    """The host name does not resolve."""


@dataclass(frozen=True)
class _HttpTarget:
    tls: bool
    host: str
    port: int
    path: str


_Target = SipUri | _HttpTarget


def _parse_target(target: str) -> _Target:
    """What to probe, or ValueError naming the target."""
    scheme = target.partition(":")[0].lower()
    if scheme in ("sip", "sips"):
        try:
            return parse_sip_uri(target)
        except SipUriError as exc:
            raise ValueError(f"cannot probe {target!r}: {exc}") from None
    if scheme in ("http", "https"):
        if any(c.isspace() for c in target):
            raise ValueError(f"cannot probe {target!r}: a URL has no spaces")
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"cannot probe {target!r}: {exc}") from None
        if not parts.hostname:
            raise ValueError(f"cannot probe {target!r}: the URL has no host")
        tls = scheme == "https"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return _HttpTarget(tls=tls, host=parts.hostname, port=port or (443 if tls else 80), path=path)
    raise ValueError(f"cannot probe {target!r}: not a sip:/sips: URI or an http(s):// URL")


def check_target(target: str) -> None:
    """Raise ValueError (naming the target and why) unless `probe` can probe it."""
    _parse_target(target)


_Address = tuple[int, tuple[str, int]]  # (address family, socket address)


async def _lookup(host: str, port: int, kind: socket.SocketKind) -> _Address:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    except socket.gaierror:
        raise _DnsFailure(host) from None
    if not infos:
        raise _DnsFailure(host)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


class _Resolver:
    """Looks each (host, port, socket kind) up once, however many probes need it; IP literals never.

    A lookup runs in the loop's default executor (a few threads), so sharing them keeps a run over many
    targets on a few hosts from queueing behind itself. A probe that times out stops waiting for a
    shared lookup without cancelling it for the others.
    """

    def __init__(self) -> None:
        self._lookups: dict[tuple[str, int, int], asyncio.Task[_Address]] = {}

    async def resolve(self, host: str, port: int, kind: socket.SocketKind) -> _Address:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)
        key = (host.lower(), port, int(kind))
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(_lookup(host, port, kind))
            lookup.add_done_callback(_consume)
            self._lookups[key] = lookup
        return await asyncio.shield(lookup)

    def close(self) -> None:
        for lookup in self._lookups.values():
            lookup.cancel()


def _consume(task: asyncio.Task[_Address]) -> None:
    """Mark a shared lookup's failure as seen (every waiter may have given up already)."""
    if not task.cancelled():
        task.exception()


class _Attempt:
    """One probe's context: the shared resolver, and where it is (a timeout while resolving is "dns")."""

    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self.phase = "start"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _UdpTransaction(asyncio.DatagramProtocol):
    """One OPTIONS over a connected UDP socket: (re)sends on timers, settles `answer` on a final response."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.answer: asyncio.Future[tuple[SipResponse, float]] = self.loop.create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.call_id = ""
        self.branch = ""
        self.request = b""
        self.interval = T1
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a _SelectorDatagramTransport

    def send(self, request: bytes, branch: str, call_id: str) -> float:
        """Send `request` now and again at T1, 2*T1, ... (capped at T2) until answered; the time sent."""
        self.request, self.branch, self.call_id = request, branch, call_id
        started = time.perf_counter()
        self._transmit()
        return started

    def _transmit(self) -> None:
        if self.answer.done() or self.transport is None or self.transport.is_closing():
            return
        self.transport.sendto(self.request)
        self.timer = self.loop.call_later(self.interval, self._transmit)
        self.interval = min(self.interval * 2, T2)

    def _settle(self, outcome: tuple[SipResponse, float] | BaseException) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.answer.done():
            return
        if isinstance(outcome, BaseException):
            self.answer.set_exception(outcome)
        else:
            self.answer.set_result(outcome)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        arrived = time.perf_counter()
        if not data.strip(b"\r\n\t "):
            return  # keep-alive
        if data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r").endswith(b" SIP/2.0"):
            return  # a request from the peer, not an answer
        try:
            response = parse_sip_response(data)
        except BadResponse as exc:
            self._settle(exc)
            return
        if response.code < 200 or not _matches(response, self.call_id, self.branch):
            return  # provisional, or someone else's answer: keep waiting for our final one
        self._settle((response, arrived))

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self._settle(_Refused())
        # other ICMP errors (e.g. host unreachable) may be transient: keep retransmitting until timeout

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._settle(exc)
            return
        if self.timer is not None:  # we closed it: answered, or timed out and nobody waits any more
            self.timer.cancel()
        if not self.answer.done():
            self.answer.cancel()


def _fresh_request(uri: SipUri, sockname: tuple[str, int]) -> tuple[bytes, str, str]:
    """(request, branch, Call-ID): an OPTIONS with fresh ids, from the socket's local address."""
    local_host, local_port = sockname[:2]
    branch, call_id = f"z9hG4bK{_token()}", f"{_token()}{_token()}@{_host_for_uri(local_host)}"
    request = build_options(uri, local_host=local_host, local_port=local_port, branch=branch, call_id=call_id)
    return request, branch, call_id


async def _probe_sip_udp(uri: SipUri, attempt: _Attempt) -> tuple[SipResponse, float]:
    loop = asyncio.get_running_loop()
    attempt.phase = "dns"
    family, addr = await attempt.resolver.resolve(uri.host, uri.effective_port, socket.SOCK_DGRAM)
    attempt.phase = "send"
    try:
        endpoint = loop.create_datagram_endpoint(_UdpTransaction, remote_addr=addr, family=family)
        transport, transaction = await endpoint
    except ConnectionRefusedError:
        raise _Refused() from None
    try:
        request, branch, call_id = _fresh_request(uri, transport.get_extra_info("sockname"))
        started = transaction.send(request, branch, call_id)
        response, arrived = await transaction.answer
        return response, (arrived - started) * 1000
    finally:
        transport.abort()


async def _open_stream(
    host: str, port: int, tls: bool, attempt: _Attempt
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    attempt.phase = "dns"
    family, addr = await attempt.resolver.resolve(host, port, socket.SOCK_STREAM)
    attempt.phase = "connect"
    try:
        return await asyncio.open_connection(
            addr[0],
            addr[1],
            family=family,
            ssl=_tls_context() if tls else None,
            server_hostname=host if tls else None,
            limit=MAX_MESSAGE,
        )
    except ConnectionRefusedError:
        raise _Refused() from None


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The next message head on a stream (without the blank line), skipping CRLF keep-alives."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip(b"\r\n"):
            raise BadResponse("connection closed inside a response") from None
        raise ConnectionError("connection closed without a response") from None
    except asyncio.LimitOverrunError:
        raise BadResponse("response headers too long") from None
    return head.lstrip(b"\r\n")[:-4]


async def _probe_sip_stream(uri: SipUri, attempt: _Attempt) -> tuple[SipResponse, float]:
    reader, writer = await _open_stream(uri.host, uri.effective_port, uri.transport == "tls", attempt)
    attempt.phase = "send"
    try:
        request, branch, call_id = _fresh_request(uri, writer.get_extra_info("sockname"))
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        while True:
            head = await _read_head(reader)
            arrived = time.perf_counter()
            if not head:
                continue
            start, headers = _parse_head(head)
            code, phrase = _sip_status(start)
            length = _content_length(headers)
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise BadResponse("connection closed inside a response body") from None
            response = SipResponse(code, phrase, headers, body)
            if code >= 200 and _matches(response, call_id, branch):
                return response, (arrived - started) * 1000
    finally:
        writer.transport.abort()


async def _probe_http(target: _HttpTarget, attempt: _Attempt) -> tuple[int, float]:
    reader, writer = await _open_stream(target.host, target.port, target.tls, attempt)
    attempt.phase = "send"
    try:
        default_port = 443 if target.tls else 80
        host = _host_for_uri(target.host)
        host_header = host if target.port == default_port else f"{host}:{target.port}"
        request = (
            f"GET {target.path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        started = time.perf_counter()
        writer.write(request.encode("ascii", errors="strict"))
        await writer.drain()
        while True:
            head = await _read_head(reader)
            arrived = time.perf_counter()
            start = head.split(b"\r\n", 1)[0].decode("latin-1")
            match = _HTTP_STATUS_LINE.match(start)
            if not match:
                raise BadResponse(f"bad status line {start[:80]!r}")
            code = int(match.group(1))
            if code >= 200:
                return code, (arrived - started) * 1000
            # 1xx interim response: its head is all there is, the real answer follows
    finally:
        writer.transport.abort()


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")


async def probe(target: str, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Probe `target` once; never raises for network trouble, only ValueError for a bad target."""
    parsed = _parse_target(target)
    _check_timeout(timeout)
    resolver = _Resolver()
    try:
        return await _probe_parsed(target, parsed, timeout, resolver)
    finally:
        resolver.close()


async def _probe_parsed(target: str, parsed: _Target, timeout: float, resolver: _Resolver) -> ProbeResult:
    deadline = asyncio.get_running_loop().time() + timeout
    attempt = _Attempt(resolver)

    def down(reason: str) -> ProbeResult:
        return ProbeResult(target, State.DOWN, reason, None)

    try:
        async with asyncio.timeout_at(deadline):
            if isinstance(parsed, _HttpTarget):
                code, rtt = await _probe_http(parsed, attempt)
                return ProbeResult(target, classify_http_status(code), str(code), round(rtt, 3))
            if parsed.transport == "udp":
                response, rtt = await _probe_sip_udp(parsed, attempt)
            else:
                response, rtt = await _probe_sip_stream(parsed, attempt)
            return ProbeResult(target, classify_sip_status(response.code), str(response.code), round(rtt, 3))
    except TimeoutError:
        return down("dns" if attempt.phase == "dns" else "timeout")
    except _DnsFailure:
        return down("dns")
    except _Refused:
        return down("refused")
    except BadResponse:
        return down(_BAD_RESPONSE)
    except (ssl.SSLError, ssl.CertificateError):
        return down("tls")
    except OSError as exc:
        return down(f"error: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


async def probe_many(
    targets: Iterable[str], timeout: float = DEFAULT_TIMEOUT, concurrency: int = DEFAULT_CONCURRENCY
) -> dict[str, ProbeResult]:
    """Probe every target concurrently, at most `concurrency` at a time; results keyed by target.

    All targets are checked first: a bad one raises ValueError before any packet is sent. Each probe has
    its own `timeout` from when it starts; with no more silent targets than `concurrency`, the whole run
    takes about `timeout` plus the time to start them all. Each distinct host name is looked up once.
    Repeated targets are probed once.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    _check_timeout(timeout)
    parsed = {target: _parse_target(target) for target in targets}
    gate = asyncio.Semaphore(concurrency)
    resolver = _Resolver()

    async def one(target: str, what: _Target) -> ProbeResult:
        async with gate:
            return await _probe_parsed(target, what, timeout, resolver)

    try:
        results = await asyncio.gather(*(one(target, what) for target, what in parsed.items()))
    finally:
        resolver.close()
    return dict(zip(parsed, results, strict=True))


def probe_sync(target: str, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """`probe` for callers without an event loop (the CLI); not for use inside a running loop."""
    return asyncio.run(probe(target, timeout))
