"""Judging a tier's `health:` URL and the address any probed host names literally.

Names are not resolved here: what a name resolves to when a rule is written proves nothing about probe
time, and the prober checks every address it resolves against the same policy (`failover_did.addresses`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from failover_did.addresses import is_canonical_literal, literal_address, refusal
from failover_did.hostnames import host_problem
from failover_did.settings import ALLOW_PRIVATE_TARGETS_ENV
from failover_did.sipuri import SipUriError, host_of

MAX_URL_CHARS = 1024


def health_url_problem(url: str) -> str | None:
    """Why `url` cannot be a health URL (an http(s) URL of plain ASCII), or None when it can."""
    if len(url) > MAX_URL_CHARS:
        return f"it is {len(url):,} characters long; at most {MAX_URL_CHARS:,} are allowed"
    for position, char in enumerate(url, start=1):
        if char.isspace() or not char.isprintable():
            return f"it has U+{ord(char):04X} at character {position}; a URL has no spaces or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError as exc:
        return f"it is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "it must be an http(s) URL or a sip:/sips: URI"
    host = parts.hostname or ""
    if literal_address(host) is None and (problem := host_problem(host)):
        return problem
    if not url.isascii():
        position, char = next((i, c) for i, c in enumerate(url, start=1) if not c.isascii())
        return f"it has the non-ASCII character {char!r} at character {position}; percent-encode it (%XX)"
    return None


def address_problem(host: str, *, allow_private: bool) -> str | None:
    """Why a probed host that is a literal address may not be in a rule, or None (also for any name)."""
    address = literal_address(host)
    if address is None:
        return None
    if not is_canonical_literal(host, address):
        kind = refusal(address, allow_private=False)
        what = f"; it is {kind}" if kind else ""
        return f"{host!r} is an unusual spelling of an address: write the address as {address}{what}"
    reason = refusal(address, allow_private=allow_private)
    if reason is None:
        return None
    if refusal(address, allow_private=True) is None:  # refused only because private is not allowed
        return f"{address} is {reason}; it is probed only where {ALLOW_PRIVATE_TARGETS_ENV}=true (the local stack)"
    return f"{address} is {reason}; it is never probed"


def private_address_warning(host: str) -> str | None:
    """For a rule accepted with private addresses allowed: the warning that AWS would refuse this host."""
    address = literal_address(host)
    if address is None or refusal(address, allow_private=False) is None:
        return None
    return (
        f"{address} is {refusal(address, allow_private=False)}; it will be refused in AWS unless "
        f"{ALLOW_PRIVATE_TARGETS_ENV} is set"
    )


def probed_host(value: str) -> str | None:
    """The host the checker probes for a target or health value (a SIP URI or an http(s) URL); None for
    a phone number or a value that has no host."""
    try:
        if value.lower().startswith(("sip:", "sips:")):
            return host_of(value)
        if value.lower().startswith(("http:", "https:")):
            return urlsplit(value).hostname
    except (SipUriError, ValueError):
        return None
    return None
