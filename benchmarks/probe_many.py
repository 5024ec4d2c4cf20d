"""How long `probe_many` takes to judge 10,000 SIP targets, and how many files it holds open meanwhile.

Loopback only. A child process binds a few hundred UDP sockets on 127.0.0.1: a third answer every
OPTIONS with 200, a third with 503, a third are bound but never answer (the slow case: each costs a full
timeout). Targets spread over those sockets, many per socket with different user parts. Then:

* all targets at once with `probe_many` (default timeout and concurrency): wall time, count by state,
  and the peak of this process's open file descriptors (/proc/self/fd, sampled every 5 ms);
* the same number of targets that are all silent (every one costs the full timeout);
* a small sample (same mix) probed sequentially, extrapolated to all targets; the ratio of the two.

With `--tcp N`, also N SIP/TCP targets on a listener that never accepts (each holds a connection for the
whole timeout): the connection bound (`--concurrency`, default 800) keeps the open files under 1,024.

Run:  .venv/bin/python benchmarks/probe_many.py  [--targets 10000] [--sockets 300] [--sample 9] [--tcp 2000]
The goal is every run judged within 2 x the probe timeout with fewer than 1,024 files open (a Lambda's
limit); the exit status is 1 when that is missed or a result is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing
import os
import random
import socket
import statistics
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
os.environ["ALLOW_PRIVATE_TARGETS"] = "true"  # the targets are on loopback, as in the local stack

from failover_did.health.probe import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    ProbeResult,
    probe,
    probe_many,
)

LOOPBACK = "127.0.0.1"
ECHOED = ("via", "from", "to", "call-id", "cseq")
KINDS = ("200 OK", "503 Service Unavailable", None)  # None: bound, silent


class Responder(asyncio.DatagramProtocol):
    """Answer each OPTIONS with `status`, echoing Via/From/To/Call-ID/CSeq like a UAS; or stay silent."""

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        if self.status is None or self.transport is None:
            return
        lines = data.decode("utf-8", "replace").split("\r\n")
        if not lines[0].startswith("OPTIONS "):
            return
        echoed = [line for line in lines[1:] if line.partition(":")[0].strip().lower() in ECHOED]
        echoed = [f"{line};tag=bench" if line.lower().startswith("to:") else line for line in echoed]
        reply = "\r\n".join([f"SIP/2.0 {self.status}", *echoed, "Content-Length: 0", "", ""])
        self.transport.sendto(reply.encode(), addr)


def serve(sockets_per_kind: int, conn: Connection) -> None:
    """Child process: bind the sockets, report {kind index: [ports]}, serve until the parent hangs up."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ports: dict[int, list[int]] = {}
        transports = []
        for index, status in enumerate(KINDS):
            for _ in range(sockets_per_kind):
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(Responder, status), local_addr=(LOOPBACK, 0)
                )
                transports.append(transport)
                ports.setdefault(index, []).append(transport.get_extra_info("sockname")[1])
        conn.send(ports)
        await loop.run_in_executor(None, conn.recv_bytes)  # the parent's "stop" (or EOFError)
        for transport in transports:
            transport.close()

    with contextlib.suppress(EOFError):
        asyncio.run(main())


def make_targets(ports: dict[int, list[int]], count: int, seed: int = 7) -> dict[str, str]:
    """count targets -> the kind each should be, round-robin over kinds, then over each kind's sockets."""
    expected: dict[str, str] = {}
    names = {0: "200", 1: "503", 2: "silent"}
    for i in range(count):
        kind = i % 3
        kind_ports = ports[kind]
        n = i // 3
        port = kind_ports[n % len(kind_ports)]
        expected[f"sip:u{n // len(kind_ports)}@{LOOPBACK}:{port}"] = names[kind]
    items = list(expected.items())
    random.Random(seed).shuffle(items)
    return dict(items)


def sample_of(expected: dict[str, str], size: int) -> list[str]:
    """About size targets with the same mix of kinds as the whole."""
    by_kind: dict[str, list[str]] = {}
    for target, kind in expected.items():
        by_kind.setdefault(kind, []).append(target)
    per_kind = max(1, size // len(by_kind))
    return [t for targets in by_kind.values() for t in targets[:per_kind]]


async def timed_run(targets: list[str], args: argparse.Namespace) -> tuple[dict[str, ProbeResult], float, float, int]:
    """probe_many over `targets`: (results, wall seconds, CPU seconds, peak open file descriptors)."""
    peak = len(os.listdir("/proc/self/fd"))
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(os.listdir("/proc/self/fd")))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    started, cpu = time.perf_counter(), time.process_time()
    results = await probe_many(targets, timeout=args.timeout, concurrency=args.concurrency)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    done.set()
    await watcher
    return results, wall, cpu, peak


async def tcp_run(args: argparse.Namespace) -> tuple[int, int]:
    """SIP over TCP to one loopback listener that never accepts: every probe holds a connection (or a
    connect attempt) for the whole timeout, so the connection bound is what keeps the files open low.
    Returns (peak open file descriptors, results other than a timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(4096)
        port = listener.getsockname()[1]
        targets = [f"sip:t{i}@{LOOPBACK}:{port};transport=tcp" for i in range(args.tcp)]
        results, wall, cpu, peak = await timed_run(targets, args)
    timeouts = sum(1 for r in results.values() if r.reason == "timeout")
    print(f"probe_many, {len(targets)} silent TCP targets: {wall:7.3f} s wall, {timeouts} timed out")
    print(f"  CPU {cpu:.2f} s; peak open file descriptors: {peak} (connections bounded at {args.concurrency})")
    return peak, len(targets) - timeouts


async def run(args: argparse.Namespace, expected: dict[str, str], silent: list[str]) -> int:
    targets = list(expected)
    await probe_many(targets[:3], timeout=0.5)  # warm up (imports, first sockets)
    load = os.getloadavg()[0]
    results, wall, cpu, peak = await timed_run(targets, args)
    silent_results, silent_wall, silent_cpu, silent_peak = await timed_run(silent, args)

    sample = sample_of(expected, args.sample)
    started = time.perf_counter()
    for target in sample:
        await probe(target, timeout=args.timeout)
    sequential = time.perf_counter() - started
    extrapolated = sequential / len(sample) * len(targets)

    report(args, expected, results, wall, sample, sequential, extrapolated)
    print(f"  CPU {cpu:.2f} s; peak open file descriptors: {peak}")
    timeouts = sum(1 for r in silent_results.values() if r.reason == "timeout")
    print(f"probe_many, {len(silent)} silent targets: {silent_wall:7.3f} s wall, {timeouts} timed out")
    print(f"  CPU {silent_cpu:.2f} s; peak open file descriptors: {silent_peak}")
    print(f"load average before the runs: {load:.1f} on {os.cpu_count()} CPUs (wall time grows with it; CPU does not)")
    goal = 2 * args.timeout
    wanted = {target: "timeout" if kind == "silent" else kind for target, kind in expected.items()}
    wrong = sum(1 for target, result in results.items() if result.reason != wanted[target])
    wrong += len(silent) - timeouts
    met = max(wall, silent_wall) <= goal and max(peak, silent_peak) < 1024
    if args.tcp:
        tcp_peak, tcp_wrong = await tcp_run(args)
        met = met and tcp_peak < 1024
        wrong += tcp_wrong
    print(f"goal (every run judged in <= 2 x timeout = {goal:.1f} s, < 1,024 files open): {'met' if met else 'MISSED'}")
    print(f"results that differ from the socket's behaviour: {wrong}")
    return 0 if met and wrong == 0 else 1


def report(
    args: argparse.Namespace,
    expected: dict[str, str],
    results: dict[str, ProbeResult],
    wall: float,
    sample: list[str],
    sequential: float,
    extrapolated: float,
) -> None:
    sockets = len({t.rsplit(":", 1)[1] for t in expected})
    mix = Counter(expected.values())
    print(f"python {sys.version.split()[0]}, loopback UDP, timeout {args.timeout} s, ", end="")
    print(f"concurrency {args.concurrency}")
    kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(mix.items()))
    print(f"targets: {len(expected)} on {sockets} sockets ({kinds})")
    print(f"probe_many, all targets:   {wall:7.3f} s wall")
    states = Counter(r.state.value for r in results.values())
    reasons = Counter(r.reason for r in results.values())
    print(f"  by state:  {', '.join(f'{k} {v}' for k, v in sorted(states.items()))}")
    print(f"  by reason: {', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}")
    rtts = sorted(r.rtt_ms for r in results.values() if r.rtt_ms is not None)
    if rtts:
        p95 = rtts[int(0.95 * (len(rtts) - 1))]
        median = statistics.median(rtts)
        print(f"  rtt of answers: median {median:.2f} ms, p95 {p95:.2f} ms, max {rtts[-1]:.2f} ms")
    print(f"one by one, sample of {len(sample)}: {sequential:7.3f} s wall")
    print(f"  extrapolated to {len(expected)} targets: {extrapolated:.1f} s")
    print(f"speed-up of probe_many over one by one: {extrapolated / wall:.0f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000, help="how many targets (max 20000)")
    parser.add_argument("--sockets", type=int, default=300, help="UDP sockets in all, a third of each kind")
    parser.add_argument("--sample", type=int, default=9, help="targets probed one by one")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--tcp", type=int, default=0, help="also this many silent SIP/TCP targets (max 4000)")
    args = parser.parse_args()
    if not 3 <= args.targets <= 20_000 or not 3 <= args.sockets <= 900 or not 3 <= args.sample <= 90:
        parser.error("keep it bounded: 3-20000 targets, 3-900 sockets, 3-90 sampled")
    if not 0 <= args.tcp <= 4000:
        parser.error("keep it bounded: 0-4000 TCP targets")

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.sockets // 3, child), daemon=True)
    server.start()
    child.close()
    try:
        if not parent.poll(30):
            raise SystemExit("the responder process did not start")
        ports: dict[int, list[int]] = parent.recv()
        expected = make_targets(ports, args.targets)
        silent = [f"sip:s{i // len(ports[2])}@{LOOPBACK}:{ports[2][i % len(ports[2])]}" for i in range(args.targets)]
        return asyncio.run(run(args, expected, silent))
    finally:
        parent.send_bytes(b"stop")
        parent.close()
        server.join(timeout=5)
        if server.is_alive():
            server.terminate()
            server.join(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
