"""Probe destinations and judge each up, degraded, down or unknown (the table is in `health.verdict`).

Targets, probed the way Twilio dials them:

* SIP URIs (`sip:`/`sips:`, `;transport=udp|tcp|tls`, `;secure=true`): an OPTIONS request (RFC 3261
  §11). `sips:`, `transport=tls` and `;secure=true` go over TLS (port 5061 unless one is given); a name
  without a port is located through SRV, then A/AAAA (`health.resolve`). UDP goes through a few shared
  sockets (`health.udp_pool`), TCP and TLS take a connection each (`health.streams`).
* HTTP(S) URLs: a `GET` to the checked address with the name in Host and SNI; redirects are not followed.

Before any packet leaves, every address a target leads to is checked against the probing policy
(`failover_did.addresses`, with `settings().allow_private_targets`); a refused one makes the result
UNKNOWN, naming the address and why. TLS checks certificates unless a target says `tls_verify=False`.

Every probe, name lookups included, is bounded by one `timeout` from when it starts. One target never
stops a run: whatever goes wrong while probing it (a target that cannot be parsed or encoded, an error
inside the prober) becomes that target's UNKNOWN result. When a name leads to several addresses (SRV
targets by priority and weight, IPv4 before IPv6), up to `MAX_HOPS` are probed and the best outcome
stands: a destination is down only when every address it leads to is (Twilio moves on to the next).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dns.asyncresolver

from failover_did.health.resolve import Hop, LookupFailed, NoSuchName, NotAllowed, Resolver, check_host
from failover_did.health.sip_message import BadResponse, SipResponse, build_options, parse_sip_response
from failover_did.health.streams import http_get, sip_over_stream
from failover_did.health.udp_pool import Refused, UdpPool
from failover_did.health.verdict import (
    CERTIFICATE_NOT_TRUSTED,
    ProbeResult,
    State,
    classify_http_status,
    classify_sip_status,
)
from failover_did.settings import DEFAULT_PROBE_TIMEOUT, settings
from failover_did.sipuri import SipUri, SipUriError, parse_sip_uri

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "BadResponse",
    "ProbeResult",
    "ProbeTarget",
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

DEFAULT_TIMEOUT = DEFAULT_PROBE_TIMEOUT
"""Seconds one probe may take in all (DNS, connect, retransmissions, answer)."""
MAX_TARGET = 2048
"""Longest target text probed (a URL or URI past this is refused as it stands)."""
MAX_REASON = 300
MAX_HOPS = 4
"""Addresses of one target probed at most (SRV targets, A/AAAA records)."""
START_BATCH = 200
"""Probes started per turn of the event loop in `probe_many`."""
DEFAULT_CONCURRENCY = 800
"""At most this many connections (TCP, TLS, HTTP) open at once in `probe_many`: a Lambda may hold 1,024
open files. UDP probes share a few sockets and do not count; name lookups have their own small bound."""


@dataclass(frozen=True)
class ProbeTarget:
    """A target with its options: `tls_verify=False` probes TLS without checking the certificate."""

    target: str
    tls_verify: bool = True


@dataclass(frozen=True)
class _SipTarget:
    uri: SipUri
    transport: str  # what the probe travels on: udp, tcp or tls


@dataclass(frozen=True)
class _HttpTarget:
    tls: bool
    host: str
    port: int
    path: str


_Target = _SipTarget | _HttpTarget


def _show(text: str) -> str:
    """`text` quoted for a message; a very long one cut short."""
    return repr(text) if len(text) <= 100 else f"{text[:80]!r}... ({len(text)} characters)"


def _parse_target(target: str) -> _Target:
    """What to probe, or ValueError naming the target and why."""
    if not isinstance(target, str):
        raise ValueError(f"cannot probe {target!r}: a target is text")
    if len(target) > MAX_TARGET:
        raise ValueError(f"cannot probe {_show(target)}: longer than {MAX_TARGET} characters")
    scheme = target.partition(":")[0].lower()
    if scheme in ("sip", "sips"):
        try:
            uri = parse_sip_uri(target)
        except SipUriError as exc:
            raise ValueError(f"cannot probe {_show(target)}: {exc}") from None
        secure = uri.params.get("secure", "").lower() == "true"
        return _SipTarget(uri, "tls" if secure else uri.transport)
    if scheme in ("http", "https"):
        if not target.isascii() or not target.isprintable() or " " in target:
            raise ValueError(
                f"cannot probe {_show(target)}: a URL is printable ASCII without spaces (percent-encode the rest)"
            )
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"cannot probe {_show(target)}: {exc}") from None
        if not parts.hostname:
            raise ValueError(f"cannot probe {_show(target)}: the URL has no host")
        try:
            check_host(parts.hostname)
        except ValueError as exc:
            raise ValueError(f"cannot probe {_show(target)}: {exc}") from None
        tls = scheme == "https"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return _HttpTarget(tls=tls, host=parts.hostname, port=port or (443 if tls else 80), path=path)
    raise ValueError(f"cannot probe {_show(target)}: not a sip:/sips: URI or an http(s):// URL")


def check_target(target: str) -> None:
    """Raise ValueError (naming the target and why) unless `probe` can probe it."""
    _parse_target(target)


class _Run:
    """What the probes of one run share: the resolver, the UDP sockets, the bound on connections."""

    def __init__(
        self,
        timeout: float,
        concurrency: int,
        dns_resolver: dns.asyncresolver.Resolver | None,
        allow_private: bool | None,
    ) -> None:
        self.timeout = timeout
        if allow_private is None:
            allow_private = settings().allow_private_targets
        self.resolver = Resolver(dns_resolver, allow_private=allow_private)
        self.udp = UdpPool()
        self.connections = asyncio.Semaphore(concurrency)

    def close(self) -> None:
        self.resolver.close()
        self.udp.close()

    async def _hops(self, what: _Target, deadline: float) -> list[Hop]:
        """Where to send the probe: a numeric host at once, a name through the resolver by `deadline`."""
        if isinstance(what, _HttpTarget):
            hop = self.resolver.literal_hop(what.host, what.port)
        else:
            hop = self.resolver.sip_literal_hop(what.uri.host, what.uri.port, what.transport)
        if hop is not None:
            return [hop]
        try:
            async with asyncio.timeout_at(deadline):
                if isinstance(what, _HttpTarget):
                    return await self.resolver.hops(what.host, what.port)
                return await self.resolver.sip_hops(what.uri.host, what.uri.port, what.transport)
        except TimeoutError:
            raise _LookupTimedOut(what.host if isinstance(what, _HttpTarget) else what.uri.host) from None

    async def probe(self, spec: ProbeTarget) -> ProbeResult:
        target = spec.target
        try:
            what = _parse_target(target)
            if isinstance(what, _SipTarget) and what.transport == "udp":
                return await self._attempt(target, what, spec.tls_verify)
            async with self.connections:
                return await self._attempt(target, what, spec.tls_verify)
        except ValueError as exc:
            return ProbeResult(str(target), State.UNKNOWN, _cut(str(exc)), None)
        except Exception as exc:  # one target never stops the run
            return ProbeResult(str(target), State.UNKNOWN, _cut(f"error inside the prober: {_describe(exc)}"), None)

    async def _attempt(self, target: str, what: _Target, verify: bool) -> ProbeResult:
        """Probe the target's addresses (at most `MAX_HOPS`) and keep the best outcome: a destination is
        down only when every address it leads to is. UDP asks them all at once (no extra sockets);
        a connection tries them in turn, moving on after a quick failure (refused, reset, TLS)."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            hops = (await self._hops(what, deadline))[:MAX_HOPS]
        except _LookupTimedOut as exc:
            return ProbeResult(
                target, State.UNKNOWN, f"the lookup of {exc} did not finish within {self.timeout:g} s", None
            )
        except (NotAllowed, LookupFailed) as exc:
            return ProbeResult(target, State.UNKNOWN, str(exc), None)
        except NoSuchName:
            return ProbeResult(target, State.DOWN, "dns", None)
        if isinstance(what, _SipTarget) and what.transport == "udp" and len(hops) > 1:
            outcomes = await asyncio.gather(*(self._on_hop(target, what, hop, deadline, verify) for hop in hops))
            return min(outcomes, key=lambda result: _RANK[result.state])
        outcome = await self._on_hop(target, what, hops[0], deadline, verify)
        for hop in hops[1:]:
            if outcome.state is not State.DOWN or outcome.reason == "timeout":
                break  # an answer, or the time is spent
            outcome = await self._on_hop(target, what, hop, deadline, verify)
        return outcome

    async def _on_hop(self, target: str, what: _Target, hop: Hop, deadline: float, verify: bool) -> ProbeResult:
        """One probe of `target` at `hop`; every network trouble becomes its result."""
        hop_text = str(hop)

        def result(state: State, reason: str, rtt: float | None = None) -> ProbeResult:
            return ProbeResult(target, state, reason, None if rtt is None else round(rtt, 3), hop_text)

        try:
            if isinstance(what, _HttpTarget):
                async with asyncio.timeout_at(deadline):
                    code, rtt = await http_get(
                        hop, tls=what.tls, host=what.host, port=what.port, path=what.path, verify=verify
                    )
                return result(classify_http_status(code), str(code), rtt)
            if what.transport == "udp":  # the pool keeps the deadline: one timer per probe, not two
                response, rtt = await self.udp.request(what.uri, hop, deadline)
            else:
                async with asyncio.timeout_at(deadline):
                    response, rtt = await sip_over_stream(
                        what.uri, hop, tls=what.transport == "tls", server_name=what.uri.host, verify=verify
                    )
            return result(classify_sip_status(response.code), str(response.code), rtt)
        except TimeoutError:
            return result(State.DOWN, "timeout")
        except Refused:
            return result(State.DOWN, "refused")
        except BadResponse:
            return result(State.DOWN, "error: bad response")
        except ssl.SSLCertVerificationError:
            return result(State.DEGRADED, CERTIFICATE_NOT_TRUSTED)
        except ssl.SSLError:
            return result(State.DOWN, "tls")
        except ConnectionResetError:
            return result(State.DOWN, "reset")
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return result(State.UNKNOWN, f"no route from the prober to {hop_text}: {_describe(exc)}")
            return result(State.DOWN, f"error: {_describe(exc)}")


_RANK = {State.UP: 0, State.DEGRADED: 1, State.DOWN: 2, State.UNKNOWN: 3}
"""Which outcome of a target's addresses stands for it: the best; down only when every address that could
be probed is. An address the prober has no route to (IPv6 from a Lambda without it) was not tested: it
stands only when no address could be."""


def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


class _LookupTimedOut(Exception):
    """The name lookup ran out of the probe's time (no evidence about the destination)."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")


async def probe_many(
    targets: Iterable[str | ProbeTarget],
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    dns_resolver: dns.asyncresolver.Resolver | None = None,
    allow_private: bool | None = None,
) -> dict[str, ProbeResult]:
    """Probe every target concurrently; results keyed by target text, one per distinct target.

    Targets are strings or `ProbeTarget`s (a target given twice with different `tls_verify` is checked).
    Each probe has its own `timeout` from when it starts; UDP probes all start at once, connections wait
    for one of `concurrency` slots first. `dns_resolver` replaces the system's name servers (tests).
    `allow_private` overrides the deployment's setting (the CLI's `--allow-private`, run by an operator).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    _check_timeout(timeout)
    specs: dict[str, ProbeTarget] = {}
    for item in targets:
        spec = item if isinstance(item, ProbeTarget) else ProbeTarget(item)
        known = specs.get(spec.target)
        verify = spec.tls_verify if known is None else known.tls_verify or spec.tls_verify
        specs[spec.target] = ProbeTarget(spec.target, verify)
    run = _Run(timeout, concurrency, dns_resolver, allow_private)
    try:
        probes = await _start_all(run.probe(spec) for spec in specs.values())
        results = await asyncio.gather(*probes)
    finally:
        run.close()
    return dict(zip(specs, results, strict=True))


async def _start_all(probes: Iterable[Coroutine[Any, Any, ProbeResult]]) -> list[asyncio.Task[ProbeResult]]:
    """Start every probe, `START_BATCH` per turn of the event loop. Each probe's clock runs from its own
    start, and between batches the loop reads answers and fires timers: started all in one turn,
    thousands of probes would hold the loop while the first ones' answers wait unread."""
    tasks: list[asyncio.Task[ProbeResult]] = []
    for one in probes:
        tasks.append(asyncio.ensure_future(one))
        if len(tasks) % START_BATCH == 0:
            await asyncio.sleep(0)
    return tasks


async def probe(
    target: str | ProbeTarget,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    dns_resolver: dns.asyncresolver.Resolver | None = None,
    allow_private: bool | None = None,
) -> ProbeResult:
    """Probe one target; never raises for the target or the network (see `probe_many`)."""
    key = target.target if isinstance(target, ProbeTarget) else target
    results = await probe_many([target], timeout, dns_resolver=dns_resolver, allow_private=allow_private)
    return results[key]


def probe_sync(
    target: str | ProbeTarget, timeout: float = DEFAULT_TIMEOUT, *, allow_private: bool | None = None
) -> ProbeResult:
    """`probe` for callers without an event loop (the CLI); not for use inside a running loop."""
    return asyncio.run(probe(target, timeout, allow_private=allow_private))
