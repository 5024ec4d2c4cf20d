"""Where a probe goes: a SIP URI located as RFC 3263 says (SRV, then A/AAAA), an HTTP host's addresses,
and the probing policy (`failover_did.addresses`) applied to every address before any packet is sent.

A SIP host written with a port, or as a numeric address, is used as written. A name without a port is
looked up as SRV first: `_sips._tcp` for TLS (sips:, `;secure=true`, `transport=tls`), else `_sip._udp` or
`_sip._tcp` by transport. Records are taken by priority, then the heavier weight first (a probe wants one
ordered list, not RFC 2782's weighted draw). No SRV records: the name's own A/AAAA on the default port
(5060, 5061 for TLS). NAPTR is skipped: Twilio's own SIP dialing does not depend on it for these URIs.

Every address the name leads to (each SRV target's included) is checked against the policy; one refused
address refuses the target, so a name cannot mix an allowed address with the cloud metadata one.
Lookups go through dnspython (injectable, so tests answer from a DNS server on 127.0.0.1). Each
(name, record type) is asked once per run, however many targets share it, and at most
`MAX_LOOKUPS_IN_FLIGHT` at a time (each holds a socket). IPv4 addresses come before IPv6.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.SRV import SRV

from failover_did.addresses import Address, literal_address, refusal

MAX_LOOKUPS_IN_FLIGHT = 64
SIP_PORT = 5060
SIPS_PORT = 5061


class NoSuchName(Exception):
    """The name does not exist or has no address: nobody can reach it (evidence, like a refused port)."""


class LookupFailed(Exception):
    """Our own lookup failed (timeout, SERVFAIL, no resolver): no evidence about the destination."""


class NotAllowed(Exception):
    """The policy refuses an address the target leads to; the message names it and why."""


@dataclass(frozen=True)
class Hop:
    """One address and port to send a probe to."""

    address: Address
    port: int
    host: str = field(init=False, compare=False)  # the address as text

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", str(self.address))

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if self.address.version == 6 else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.address.version == 6 else f"{self.host}:{self.port}"


def check_host(host: str) -> None:
    """Raise ValueError unless `host` is a numeric address or a DNS name we can look up."""
    if literal_address(host) is not None:
        return
    if not host.isascii() or not all(c.isalnum() or c in "-._" for c in host):
        raise ValueError(f"the host {host!r} is not a valid host name or address")
    try:
        dns.name.from_text(host)
    except dns.exception.DNSException as exc:
        shown = repr(host) if len(host) <= 80 else f"{host[:60]!r}..."
        raise ValueError(f"the host {shown} is not a valid host name: {exc}") from None


_Records = tuple[object, ...]


class Resolver:
    """Finds the hops of targets for one run of probes; `close()` when the run ends."""

    def __init__(self, dns_resolver: dns.asyncresolver.Resolver | None, *, allow_private: bool) -> None:
        self._dns = dns_resolver
        self._allow_private = allow_private
        self._lookups: dict[tuple[str, dns.rdatatype.RdataType], asyncio.Task[_Records]] = {}
        self._gate = asyncio.Semaphore(MAX_LOOKUPS_IN_FLIGHT)
        self._literals: dict[str, tuple[Address, str | None] | None] = {}
        self._literal_hops: dict[tuple[str, int], Hop] = {}

    def literal_hop(self, host: str, port: int) -> Hop | None:
        """The hop of a numeric `host` (allowed by the policy, else NotAllowed); None for a name.
        Judged once per host and run: a run may hold thousands of targets on one address."""
        if host not in self._literals:
            address = literal_address(host)
            why = None if address is None else refusal(address, allow_private=self._allow_private)
            self._literals[host] = None if address is None else (address, why)
        known = self._literals[host]
        if known is None:
            return None
        address, why = known
        if why is not None:
            raise NotAllowed(f"not probed: {_shown(host, address)} is {why}")
        hop = self._literal_hops.get((host, port))
        if hop is None:
            hop = self._literal_hops[host, port] = Hop(address, port)
        return hop

    def sip_literal_hop(self, host: str, port: int | None, transport: str) -> Hop | None:
        """`literal_hop` for a SIP URI's host and port (the default port by transport)."""
        return self.literal_hop(host, port or (SIPS_PORT if transport == "tls" else SIP_PORT))

    async def sip_hops(self, host: str, port: int | None, transport: str) -> list[Hop]:
        """Where a SIP URI with this host, port and transport (udp, tcp, tls) is sent, in order."""
        tls = transport == "tls"
        default_port = SIPS_PORT if tls else SIP_PORT
        literal = self.literal_hop(host, port or default_port)
        if literal is not None:
            return [literal]
        if port is not None:
            return await self.hops(host, port)
        service = "_sips._tcp" if tls else f"_sip._{transport}"
        records = await self._records(f"{service}.{host}", dns.rdatatype.SRV, missing_ok=True)
        srv = sorted((r for r in records if isinstance(r, SRV)), key=lambda r: (r.priority, -r.weight))
        if not srv:
            return await self.hops(host, default_port)
        if len(srv) == 1 and srv[0].target == dns.name.root:
            raise NoSuchName(f"{host} publishes no {service} service (SRV target '.')")
        found: list[Hop] = []
        for record in srv:
            if record.target == dns.name.root:
                continue
            try:
                found += await self.hops(record.target.to_text(omit_final_dot=True), int(record.port))
            except NoSuchName:  # a dead SRV target: the others may still do
                continue
        if not found:
            raise NoSuchName(f"no SRV target of {service}.{host} has an address")
        return found

    async def hops(self, host: str, port: int) -> list[Hop]:
        """The addresses of `host` (a name or a numeric address) with `port`, each allowed by the policy."""
        literal = self.literal_hop(host, port)
        if literal is not None:
            return [literal]
        found = await self._addresses(host)
        for address in found:
            why = refusal(address, allow_private=self._allow_private)
            if why is not None:
                raise NotAllowed(f"not probed: {_shown(host, address)} is {why}")
        return [Hop(address, port) for address in found]

    async def _addresses(self, host: str) -> list[Address]:
        if _is_localhost(host):  # RFC 6761: always loopback, and never asked of DNS (which has no /etc/hosts)
            return [ipaddress.ip_address("127.0.0.1")]
        v4, v6 = await asyncio.gather(
            self._records(host, dns.rdatatype.A, missing_ok=True),
            self._records(host, dns.rdatatype.AAAA, missing_ok=True),
            return_exceptions=True,
        )
        found: list[Address] = []
        failures: list[BaseException] = []
        for answer in (v4, v6):
            if isinstance(answer, BaseException):
                failures.append(answer)
                continue
            found += [ipaddress.ip_address(str(getattr(r, "address", ""))) for r in answer]
        if found:
            return found
        if failures:
            raise failures[0]
        raise NoSuchName(f"{host} has no address")

    async def _records(self, name: str, rdtype: dns.rdatatype.RdataType, *, missing_ok: bool) -> _Records:
        """The records of `name`; empty when it has none of this type (NXDOMAIN counts as none for SRV,
        and is NoSuchName for addresses)."""
        key = (name.lower().rstrip("."), rdtype)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._ask(name, rdtype))
            lookup.add_done_callback(_consume)
            self._lookups[key] = lookup
        records = await asyncio.shield(lookup)
        if records is _NXDOMAIN:
            if rdtype == dns.rdatatype.SRV and missing_ok:
                return ()
            raise NoSuchName(f"{name} does not exist")
        return records

    async def _ask(self, name: str, rdtype: dns.rdatatype.RdataType) -> _Records:
        async with self._gate:
            try:
                resolver = self._dns or _default_resolver()
                answer = await resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                return _NXDOMAIN
            except dns.exception.Timeout:
                raise LookupFailed(f"the lookup of {name} timed out") from None
            except dns.resolver.NoNameservers:
                raise LookupFailed(f"no name server answered for {name}") from None
            except dns.exception.DNSException as exc:
                raise LookupFailed(f"the lookup of {name} failed: {exc}") from None
        return tuple(answer.rrset or ())

    def close(self) -> None:
        for lookup in self._lookups.values():
            lookup.cancel()


_NXDOMAIN: _Records = (object(),)


def _is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _shown(host: str, address: Address) -> str:
    return host if str(address) == host.strip("[]") else f"{host} ({address})"


def _consume(task: asyncio.Task[_Records]) -> None:
    """Mark a shared lookup's failure as seen (every waiter may have given up already)."""
    if not task.cancelled():
        task.exception()


_default: list[dns.asyncresolver.Resolver] = []


def _default_resolver() -> dns.asyncresolver.Resolver:
    """The system's name servers (from /etc/resolv.conf), read once per container."""
    if not _default:
        try:
            _default.append(dns.asyncresolver.Resolver())
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"no name server configured: {exc}") from None
    return _default[0]
