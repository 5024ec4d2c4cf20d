"""The SIP messages of a probe: the OPTIONS request we send (RFC 3261 §11) and reading the responses.

The Request-URI and To are the target as written minus its parameters (`sip:[user@]host[:port]`), so a
PBX that routes OPTIONS by user answers for that extension. Via carries `rport` (RFC 3581): the probe runs
behind NAT, and the answer must come back to the address and port it was sent from.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from failover_did.sipuri import SipUri

USER_AGENT = "failover-did"
MAX_MESSAGE = 65_535
"""Largest response (headers and body) read; a longer one is a bad response."""

_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2})(?: (.*))?$")
# RFC 3261 §7.3.3 compact header forms we may meet in a response
_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to", "m": "contact"}


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


# ------------------------------------------------------------------------------------------ SIP messages


def _token() -> str:
    return secrets.token_hex(8)


def host_for_uri(host: str) -> str:
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
    transport: str | None = None,
) -> bytes:
    """An OPTIONS request for `uri` as sent from `local_host`:`local_port`; fresh branch/tag/Call-ID.
    `transport` (udp, tcp, tls) is the one the request travels on; by default the URI's own."""
    branch = branch or f"z9hG4bK{_token()}"
    if not branch.startswith("z9hG4bK"):
        raise ValueError("an RFC 3261 branch starts with the magic cookie z9hG4bK")
    tag = tag or _token()
    local = host_for_uri(local_host)
    call_id = call_id or f"{_token()}{_token()}@{local}"
    target = _request_uri(uri)
    transport = (transport or uri.transport).lower()
    contact_params = "" if transport == "udp" else f";transport={transport}"
    contact_scheme = "sips" if uri.scheme == "sips" else "sip"
    lines = [
        f"OPTIONS {target} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {local}:{local_port};branch={branch};rport",
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


def parse_head(head: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
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


def content_length(headers: tuple[tuple[str, str], ...]) -> int:
    value = next((v for k, v in headers if k == "content-length"), None)
    if value is None:
        return 0
    if not value.isdigit() or int(value) > MAX_MESSAGE:
        raise BadResponse(f"bad Content-Length {value!r}")
    return int(value)


def sip_status(start: str) -> tuple[int, str]:
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
    start, headers = parse_head(head)
    code, phrase = sip_status(start)
    length = content_length(headers)
    if len(body) < length:
        raise BadResponse("body shorter than Content-Length")
    return SipResponse(code, phrase, headers, body[:length])


def matches(response: SipResponse, call_id: str, branch: str) -> bool:
    """Is this the answer to our request? Same Call-ID, and our branch in the top Via if it has one."""
    if response.header("call-id") != call_id:
        return False
    got = response.top_via_branch
    return got is None or got == branch


def fresh_ids(local_host: str) -> tuple[str, str, str]:
    """(branch, Call-ID, From tag) for a new request: random, so a reply to it cannot be guessed."""
    draw = secrets.token_hex(32)
    return f"z9hG4bK{draw[:16]}", f"{draw[16:48]}@{host_for_uri(local_host)}", draw[48:]
