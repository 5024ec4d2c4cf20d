"""SIP URI syntax (RFC 3261 §19.1), as far as dialing and probing a destination need it."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from failover_did.hostnames import host_problem

MAX_URI_CHARS = 1024

# user part: unreserved / escaped / user-unreserved characters (RFC 3261 §25.1)
_USER = re.compile(r"^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$")
_PARAM = re.compile(r"^[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+$")
TRANSPORTS = ("udp", "tcp", "tls")


class SipUriError(ValueError):
    """The text is not a SIP URI we can dial or probe; the message says why."""


@dataclass(frozen=True)
class SipUri:
    scheme: str  # "sip" or "sips"
    user: str | None
    host: str  # without brackets for IPv6
    port: int | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        if "transport" in self.params:
            return self.params["transport"].lower()
        return "tls" if self.scheme == "sips" else "udp"

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 5061 if self.transport == "tls" else 5060

    @property
    def host_for_uri(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_sip_uri(text: str) -> SipUri:
    """Parse `sip:[user@]host[:port][;param=value...]`; raise SipUriError with the reason."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        raise SipUriError("a SIP URI starts with sip: or sips:")
    if len(text) > MAX_URI_CHARS:
        raise SipUriError(f"it is {len(text):,} characters long; at most {MAX_URI_CHARS:,} are allowed")
    if any(c.isspace() for c in text) or any(c in text for c in '<>"'):
        raise SipUriError("a SIP URI has no spaces, quotes or angle brackets")
    if "?" in rest:
        raise SipUriError("SIP URI headers (after '?') are not supported")
    user: str | None = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
        if not user or not _USER.match(user):
            raise SipUriError(f"the user part {_cut(user)} is empty or has characters a SIP URI does not allow")
    hostport, *raw_params = rest.split(";")
    host, port = _split_hostport(hostport)
    params: dict[str, str] = {}
    for raw in raw_params:
        name, _, value = raw.partition("=")
        if not name or not _PARAM.match(name) or (value and not _PARAM.match(value)):
            raise SipUriError(f"the parameter {_cut(raw)} is malformed")
        params[name.lower()] = value
    uri = SipUri(scheme=scheme.lower(), user=user, host=host, port=port, params=params)
    if uri.transport not in TRANSPORTS:
        raise SipUriError(f"transport {_cut(uri.transport)} is not one of {', '.join(TRANSPORTS)}")
    if uri.scheme == "sips" and uri.transport != "tls":
        raise SipUriError("a sips: URI must use transport=tls")
    return uri


def host_of(target: str) -> str | None:
    """The lower-cased host of a SIP target (the "same PBX" comparisons); None for anything else.
    Raises SipUriError for a malformed SIP URI."""
    if not target.lower().startswith(("sip:", "sips:")):
        return None
    return parse_sip_uri(target).host.lower()


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        inside, sep, tail = hostport[1:].partition("]")
        if not sep:
            raise SipUriError("an IPv6 host needs a closing ']'")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise SipUriError(f"{_cut(inside)} is not an IPv6 address") from None
        host, port_text = inside, tail[1:] if tail.startswith(":") else None
        if tail and not tail.startswith(":"):
            raise SipUriError(f"unexpected {_cut(tail)} after the host")
    else:
        host, sep, port_text_or_empty = hostport.partition(":")
        port_text = port_text_or_empty if sep else None
        if problem := host_problem(host):
            raise SipUriError(f"the host {_cut(host)} is not a valid host name or address: {problem}")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SipUriError(f"the port {_cut(port_text)} is not a number from 1 to 65535")
        port = int(port_text)
    return host, port


def _cut(part: str) -> str:
    """A part of the URI for a message, quoted and bounded."""
    return repr(part if len(part) <= 40 else part[:40] + "…")
