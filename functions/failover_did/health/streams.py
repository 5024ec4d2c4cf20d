"""Probes over a connection (one socket each): SIP OPTIONS over TCP or TLS, and HTTP(S) GET.

The connection goes to the address the resolver checked, never to a name the socket layer would look
up again; TLS sends the target's name for SNI and checks the certificate against it (unless the tier
says `tls_verify: false`). TCP and TLS send the request once and read one final answer; HTTP redirects
are reported, never followed.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time

from failover_did.health.resolve import Hop
from failover_did.health.sip_message import (
    MAX_MESSAGE,
    USER_AGENT,
    BadResponse,
    SipResponse,
    build_options,
    content_length,
    fresh_ids,
    host_for_uri,
    matches,
    parse_head,
    sip_status,
)
from failover_did.health.udp_pool import Refused
from failover_did.sipuri import SipUri

_HTTP_STATUS_LINE = re.compile(r"^HTTP/1\.[01] ([1-9][0-9]{2})(?: (.*))?$")


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """The system trust store and host-name check; or, for `tls_verify: false`, encryption alone."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_stream(
    hop: Hop, *, server_name: str | None, verify: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to `hop`, with TLS for `server_name` when it is given."""
    try:
        return await asyncio.open_connection(
            hop.host,
            hop.port,
            family=hop.family,
            ssl=tls_context(verify) if server_name is not None else None,
            server_hostname=server_name,
            limit=MAX_MESSAGE,
        )
    except ConnectionRefusedError:
        raise Refused() from None


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


async def sip_over_stream(
    uri: SipUri, hop: Hop, *, tls: bool, server_name: str, verify: bool
) -> tuple[SipResponse, float]:
    """An OPTIONS over TCP or TLS to `hop`: (final answer, round trip in ms)."""
    reader, writer = await open_stream(hop, server_name=server_name if tls else None, verify=verify)
    try:
        local_host, local_port = writer.get_extra_info("sockname")[:2]
        branch, call_id, tag = fresh_ids(local_host)
        transport = "tls" if tls else "tcp"
        request = build_options(
            uri,
            local_host=local_host,
            local_port=local_port,
            branch=branch,
            call_id=call_id,
            tag=tag,
            transport=transport,
        )
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        while True:
            head = await _read_head(reader)
            arrived = time.perf_counter()
            if not head:
                continue
            start, headers = parse_head(head)
            code, phrase = sip_status(start)
            length = content_length(headers)
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise BadResponse("connection closed inside a response body") from None
            response = SipResponse(code, phrase, headers, body)
            if code >= 200 and matches(response, call_id, branch):
                return response, (arrived - started) * 1000
    finally:
        writer.transport.abort()


async def http_get(hop: Hop, *, tls: bool, host: str, port: int, path: str, verify: bool) -> tuple[int, float]:
    """GET `path` from `hop` with `Host: host[:port]`: (final status code, round trip in ms)."""
    reader, writer = await open_stream(hop, server_name=host if tls else None, verify=verify)
    try:
        default_port = 443 if tls else 80
        shown = host_for_uri(host)
        host_header = shown if port == default_port else f"{shown}:{port}"
        request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        started = time.perf_counter()
        writer.write(request.encode("ascii"))
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
