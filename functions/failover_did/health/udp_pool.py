"""SIP OPTIONS over UDP for many targets through a few shared sockets.

A Lambda may hold 1,024 open files, and a run probes thousands of targets at once, so UDP probes do not
get a socket each: a small pool of unconnected sockets per address family sends every request, and an
answer is matched to its request by Call-ID and the top Via branch (both random: a stranger cannot
guess them). The answer may come from another address than the one asked (a multi-homed PBX answers
from where it likes; `rport` brings it back to us). A datagram that is not a SIP response, or answers
no request of ours, is dropped: it cannot be tied to a request, and anyone can send one, so it is no
evidence (a peer that only ever sends garbage ends in a timeout).

An unconnected socket is not told of an ICMP "port unreachable" the way a connected one is. On Linux
the sockets set IP_RECVERR, and the kernel queues each such error with the destination it was about:
every request in flight to that address and port is then "refused" at once, as a connected socket
would report. Elsewhere a closed port is silent and ends in a timeout (down either way).

Retransmission follows a non-INVITE client transaction (RFC 3261 §17.1.2.2): T1 = 0.5 s, doubling,
capped at T2 = 4 s, until the caller's timeout.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import itertools
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

from failover_did.health.resolve import Hop
from failover_did.health.sip_message import BadResponse, SipResponse, build_options, fresh_ids, parse_sip_response
from failover_did.sipuri import SipUri

T1 = 0.5
"""RFC 3261 round-trip estimate: the first UDP retransmission interval."""
T2 = 4.0
"""RFC 3261 cap on the non-INVITE retransmission interval."""
SOCKETS_PER_FAMILY = 8
MAX_DATAGRAM = 65_535
_READS_PER_WAKE = 256

# Linux's <linux/in.h>, <linux/in6.h>, <linux/errqueue.h> (not in Python's socket module before 3.12)
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_MSG_ERRQUEUE = 0x2000
_SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, origin, type, code, pad, info, data
_ON_LINUX = sys.platform.startswith("linux")


class Refused(Exception):
    """The peer's port is closed (TCP RST or ICMP port unreachable)."""


@dataclass(eq=False)
class _Transaction:
    destination: tuple[str, int]
    sockaddr: tuple[str, int] | tuple[str, int, int, int]
    sock: socket.socket
    request: bytes
    branch: str
    answer: asyncio.Future[tuple[SipResponse, float]]
    deadline: float  # loop time when the caller stops waiting
    interval: float = T1
    expires_next: bool = False  # the transaction's next timed event: the deadline, not a retransmission
    started: float = field(default_factory=time.perf_counter)


class UdpPool:
    """Shared UDP sockets for one run of probes; `close()` when the run ends."""

    def __init__(self, sockets_per_family: int = SOCKETS_PER_FAMILY) -> None:
        self._loop = asyncio.get_running_loop()
        self._size = sockets_per_family
        self._sockets: dict[socket.AddressFamily, list[tuple[socket.socket, int]]] = {}
        self._turn = itertools.count()
        self._by_call_id: dict[str, _Transaction] = {}
        self._by_destination: dict[tuple[str, int], set[_Transaction]] = {}
        self._local_host: dict[tuple[socket.AddressFamily, str], str] = {}
        # Retransmissions and deadlines of every transaction in one heap of (due, seq, transaction) under
        # one loop timer: thousands of loop timers cost more (each a handle, a Python-level comparison).
        self._due: list[tuple[float, int, _Transaction]] = []
        self._seq = itertools.count()
        self._wakeup: asyncio.TimerHandle | None = None

    async def request(self, uri: SipUri, hop: Hop, deadline: float) -> tuple[SipResponse, float]:
        """Send an OPTIONS for `uri` to `hop` until a final answer: (answer, round trip in ms).
        Raises TimeoutError at `deadline` (loop time), Refused, or OSError."""
        sock, local_port = self._socket(hop.family)
        local_host = self._local_host_for(hop)
        branch, call_id, tag = fresh_ids(local_host)
        request = build_options(
            uri, local_host=local_host, local_port=local_port, branch=branch, call_id=call_id, tag=tag, transport="udp"
        )
        sockaddr: tuple[str, int] | tuple[str, int, int, int] = (
            (hop.host, hop.port, 0, 0) if hop.family == socket.AF_INET6 else (hop.host, hop.port)
        )
        answer: asyncio.Future[tuple[SipResponse, float]] = self._loop.create_future()
        transaction = _Transaction((hop.host, hop.port), sockaddr, sock, request, branch, answer, deadline)
        self._by_call_id[call_id] = transaction
        self._by_destination.setdefault(transaction.destination, set()).add(transaction)
        try:
            self._transmit(transaction)
            response, arrived = await transaction.answer
            return response, (arrived - transaction.started) * 1000
        finally:
            del self._by_call_id[call_id]
            waiting = self._by_destination[transaction.destination]
            waiting.discard(transaction)
            if not waiting:
                del self._by_destination[transaction.destination]

    def close(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        for sockets in self._sockets.values():
            for sock, _ in sockets:
                self._loop.remove_reader(sock.fileno())
                sock.close()
        self._sockets.clear()

    # ---------------------------------------------------------------------------------------- sending

    def _socket(self, family: socket.AddressFamily) -> tuple[socket.socket, int]:
        sockets = self._sockets.setdefault(family, [])
        if len(sockets) < self._size:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
                if _ON_LINUX and family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                elif _ON_LINUX:
                    sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            except OSError:
                sock.close()
                raise
            self._loop.add_reader(sock.fileno(), self._readable, sock)
            sockets.append((sock, int(sock.getsockname()[1])))
            return sockets[-1]
        return sockets[next(self._turn) % len(sockets)]

    def _local_host_for(self, hop: Hop) -> str:
        """The address our packets to `hop` leave from (for Via, From, Contact, Call-ID): what the kernel
        routes to it, found by connecting a throwaway UDP socket (no packet is sent)."""
        key = (hop.family, hop.host)
        local = self._local_host.get(key)
        if local is None:
            with socket.socket(hop.family, socket.SOCK_DGRAM) as probe:
                probe.connect((hop.host, hop.port))
                local = str(probe.getsockname()[0])
            self._local_host[key] = local
        return local

    def _transmit(self, transaction: _Transaction) -> None:
        if transaction.answer.done():
            return
        try:
            transaction.sock.sendto(transaction.request, transaction.sockaddr)
        except (BlockingIOError, InterruptedError):
            pass  # the send buffer is full: the next retransmission tries again
        except OSError as exc:
            transaction.answer.set_exception(exc)
            return
        following = self._loop.time() + transaction.interval
        if following < transaction.deadline:
            transaction.interval = min(transaction.interval * 2, T2)
            self._at(following, transaction)
        else:
            transaction.expires_next = True
            self._at(transaction.deadline, transaction)

    def _at(self, due: float, transaction: _Transaction) -> None:
        heapq.heappush(self._due, (due, next(self._seq), transaction))
        if self._due[0][2] is transaction:  # the new earliest event
            self._arm()

    def _arm(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup = self._loop.call_at(self._due[0][0], self._tick) if self._due else None

    def _tick(self) -> None:
        self._wakeup = None
        now = self._loop.time()
        while self._due and self._due[0][0] <= now:
            _, _, transaction = heapq.heappop(self._due)
            if transaction.answer.done():
                continue  # answered or given up: its events lapse
            if transaction.expires_next:
                transaction.answer.set_exception(TimeoutError())
            else:
                self._transmit(transaction)
        self._arm()

    # -------------------------------------------------------------------------------------- receiving

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(_READS_PER_WAKE):
            try:
                data, _ = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # a queued ICMP error surfaces here first; the error queue says which
                self._read_errors(sock)
                continue
            self._received(data, time.perf_counter())
        if _ON_LINUX:
            self._read_errors(sock)

    def _received(self, data: bytes, arrived: float) -> None:
        if not data.strip(b"\r\n\t "):
            return  # keep-alive
        if data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r").endswith(b" SIP/2.0"):
            return  # a request from the peer, not an answer
        try:
            response = parse_sip_response(data)
        except BadResponse:
            return  # cannot be matched to a request; anyone could have sent it
        transaction = self._by_call_id.get(response.header("call-id") or "")
        if transaction is None or transaction.answer.done() or response.code < 200:
            return  # someone else's, late, or provisional: keep waiting for our final one
        if response.top_via_branch not in (None, transaction.branch):
            return
        transaction.answer.set_result((response, arrived))

    def _read_errors(self, sock: socket.socket) -> None:
        while True:
            try:
                _, ancillary, _, destination = sock.recvmsg(1, 512, _MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not any(self._is_port_unreachable(data) for _, _, data in ancillary):
                continue  # host or net unreachable may pass: keep retransmitting until the timeout
            key = (str(destination[0]), int(destination[1]))
            for transaction in self._by_destination.get(key, ()):
                if not transaction.answer.done():
                    transaction.answer.set_exception(Refused())

    @staticmethod
    def _is_port_unreachable(data: bytes) -> bool:
        if len(data) < _SOCK_EXTENDED_ERR.size:
            return False
        return bool(_SOCK_EXTENDED_ERR.unpack_from(data)[0] == errno.ECONNREFUSED)
