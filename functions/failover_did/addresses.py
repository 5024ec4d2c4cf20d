"""Which network addresses the health checker may probe: the one policy, used by the rules validator
(for literal addresses in a rule) and by the prober (for every address a name resolves to).

Link-local (cloud metadata at 169.254.169.254, the container credentials endpoint at 169.254.170.2),
unspecified, multicast and reserved addresses are never probed. Loopback and private ranges are probed
only where the deployment allows them (the local stack does: it tests on loopback); in AWS a loopback
address is the checker's own sandbox (the Lambda runtime API listens on 127.0.0.1:9001).
"""

from __future__ import annotations

import ipaddress
import socket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(address: Address, *, allow_private: bool) -> str | None:
    """Why `address` may not be probed, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped, allow_private=allow_private)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return None if allow_private else "a loopback address (the checker's own machine)"
    if address.is_private or address.is_reserved or not address.is_global:
        return None if allow_private else "a private or reserved address"
    return None


def literal_address(host: str) -> Address | None:
    """The address a host names literally, or None for a name. Besides the usual forms this catches what
    the C resolver also reads as IPv4 (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`), so a rule cannot
    reach a refused address through an unusual spelling."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(c in "0123456789abcdefxABCDEFX." for c in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def is_canonical_literal(host: str, address: Address) -> bool:
    """Whether a literal address is written the ordinary way (dotted quad, or bracketed IPv6)."""
    return host.strip("[]").lower() == str(address)
