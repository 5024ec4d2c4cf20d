"""A tiny authoritative DNS server on 127.0.0.1 for the prober's tests (dnspython builds the answers).

Names it knows answer their records (NOERROR with no records for another type); names it does not know
are NXDOMAIN; names in `silent` are never answered (a lookup that times out) and names in `servfail`
get SERVFAIL. `resolver()` is a dnspython resolver that asks only this server.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import dns.asyncresolver
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = dict[str, list[tuple[str, str]]]  # name -> [(type, rdata text)], e.g. ("SRV", "10 5 5070 a.test.")


class LocalDns:
    def __init__(
        self, records: Records, *, silent: frozenset[str] = frozenset(), servfail: frozenset[str] = frozenset()
    ) -> None:
        self.records = {_key(name): rows for name, rows in records.items()}
        self.silent = {_key(name) for name in silent}
        self.servfail = {_key(name) for name in servfail}
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LocalDns:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.timeout = resolver.lifetime = 5.0
        return resolver

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._answer(dns.message.from_wire(wire))
            if reply is not None:
                self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = _key(question.name.to_text())
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            rows = [text for row_kind, text in self.records[name] if row_kind == kind]
            if rows:
                rrset = dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, rows)
                response.answer.append(rrset)
        return response


def _key(name: str) -> str:
    return name.lower().rstrip(".")
