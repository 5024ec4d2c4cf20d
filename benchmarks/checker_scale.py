"""How long one health-checker run takes over 10,000 targets, DynamoDB emulated in-process (moto).

(a) record phase of a mass outage: every target was up and had failed one check; this run sees them all
    down, so all 10,000 go down at once: every health shard rewritten (one conditional write each, 128
    in all) and 10,000 events (batches of 25);
(b) a steady run: every target up for a while, nothing changes: one scan of the shards, no writes;
(c) the real prober against 10,000 loopback SIP targets (a child process answers OPTIONS with 200 on a few
    hundred UDP sockets), then again once that process is gone and every port is refused.

Most of (a) and (b) is the emulator's own cost per request (printed as "inside moto"); in DynamoDB the same
run is bounded by request latency over the concurrent writers instead.

Loopback only; ALLOW_PRIVATE_TARGETS=true is set for the prober. The goal is (a) plus the probing of the
mass outage (the second run of (c); one probe timeout with --skip-probe) within 30 s; the exit status is 1
when that is missed.

Run:  .venv/bin/python benchmarks/checker_scale.py  [--targets 10000] [--probe-targets 10000] [--sockets 200]
      [--writers 16] [--skip-probe]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "infra")]
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FailoverDid")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "failover-did")
os.environ["ALLOW_PRIVATE_TARGETS"] = "true"
os.environ["DYNAMODB_TIMEOUT_SECONDS"] = "10"  # moto under load; the Lambda's own setting is the template's

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402

from failover_did.health import checker  # noqa: E402
from failover_did.health.hysteresis import DOWN, UP, TargetHealth, Thresholds  # noqa: E402
from failover_did.health.probe import DEFAULT_TIMEOUT  # noqa: E402
from failover_did.health.transitions import Use  # noqa: E402
from failover_did.observability import metrics  # noqa: E402
from failover_did.store import health_store  # noqa: E402
from failover_did.store.tables import EventItem, HealthShard  # noqa: E402
from failover_did_cli import schema  # noqa: E402

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class Verdict:
    def __init__(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason


def plan_of(targets: list[str]) -> dict[str, list[Use]]:
    return {target: [Use(f"+1415{i:07d}", 0)] for i, target in enumerate(targets)}


def fresh_tables() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    for name in client.list_tables()["TableNames"]:
        client.delete_table(TableName=name)
    schema.create_tables(client)


def seed(targets: list[str], failures: int, successes: int, at: datetime) -> None:
    stamp = health_store.stamp(at)
    grouped = health_store.targets_in(targets)
    with HealthShard.batch_write() as batch:
        for key, members in grouped.items():
            health = {
                target: health_store.dump(
                    health_store.encode(
                        TargetHealth(target, UP, failures, successes, "200", stamp, stamp, reached_at=stamp), 1
                    )
                )
                for target in members
            }
            batch.save(HealthShard(key, targets=health, version=1))


PHASES: dict[str, float] = {}


def timed(name: str, function: Callable[..., T]) -> Callable[..., T]:
    """Wall time spent in `function` under PHASES[name], and the CPU time of the calling thread under
    PHASES[name + " cpu"] (a busy machine stretches wall time; CPU time is what a Lambda pays for)."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - started
            PHASES[name + " cpu"] = PHASES.get(name + " cpu", 0.0) + time.thread_time() - cpu

    return wrapper


health_store.shards = timed("scan", health_store.shards)
checker._EventWriter.add = timed("events", checker._EventWriter.add)  # type: ignore[method-assign]
checker._EventWriter.__exit__ = timed("events", checker._EventWriter.__exit__)  # type: ignore[method-assign]
# Time spent inside the emulator answering requests (summed over threads: exact with --writers 1), and
# the DynamoDB requests made, by operation (set below).


def timed_record(plan: dict[str, list[Use]], results: dict[str, Verdict], at: datetime) -> tuple[float, checker.Report]:
    PHASES.clear()
    REQUESTS.clear()
    started, cpu = time.perf_counter(), time.process_time()
    report = checker.record_results(plan, results, at, Thresholds())  # type: ignore[arg-type]
    PHASES["cpu"] = time.process_time() - cpu
    metrics.clear_metrics()
    return time.perf_counter() - started, report


REQUESTS: Counter[str] = Counter()
_real_stub = BotocoreStubber.__call__


def _counted(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
    operation = request.headers.get("X-Amz-Target") or "?"
    operation = operation.decode() if isinstance(operation, bytes) else str(operation)
    REQUESTS[operation.rpartition(".")[2]] += 1
    return _real_stub(self, event_name, request, **kwargs)


BotocoreStubber.__call__ = timed("emulator", _counted)  # type: ignore[method-assign]


def requests_made() -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(REQUESTS.items())) or "none"


def phases(total: float) -> str:
    scan, news, emulator = PHASES.get("scan", 0.0), PHASES.get("events", 0.0), PHASES.get("emulator", 0.0)
    return (
        f"scan {scan:.2f} s, then judging and writes {total - scan:.2f} s (events {news:.2f} s of it); "
        f"inside moto {emulator:.2f} s; CPU: ours (boto3, PynamoDB, the checker) "
        f"{PHASES['cpu'] - PHASES.get('emulator cpu', 0.0):.2f} s, moto {PHASES.get('emulator cpu', 0.0):.2f} s"
    )


def events_written() -> int:
    return sum(1 for _ in EventItem.scan())


def describe(report: checker.Report) -> str:
    kinds = Counter(t.kind for t in report.transitions)
    news = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
    return f"down {len(report.down)}, news: {news}, errors {len(report.errors)}"


def record_phases(count: int) -> float:
    targets = [f"sip:u{i}@pbx{i % 97}.example.com" for i in range(count)]
    plan = plan_of(targets)
    fresh_tables()
    seed(targets, failures=1, successes=0, at=T0)
    outage = {t: Verdict(DOWN, "timeout") for t in targets}
    seconds, report = timed_record(plan, outage, T0 + timedelta(minutes=1))
    print(f"(a) mass outage, record phase: {count} targets down at once in {seconds:.2f} s ({describe(report)})")
    print(f"    {phases(seconds)}; events in the table: {events_written()}")
    print(f"    DynamoDB requests: {requests_made()}")

    fresh_tables()
    seed(targets, failures=0, successes=20, at=T0)
    steady = {t: Verdict(UP, "200") for t in targets}
    steady_seconds, steady_report = timed_record(plan, steady, T0 + timedelta(minutes=1))
    print(
        f"(b) steady run, record phase: {count} targets unchanged in {steady_seconds:.2f} s ({describe(steady_report)})"
    )
    print(f"    {phases(steady_seconds)}")
    print(f"    DynamoDB requests: {requests_made()}")
    return seconds


def serve(sockets: int, conn: Connection) -> None:
    """Child process: answer every OPTIONS with 200 on `sockets` UDP ports until the parent says stop."""

    class Answer(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
            lines = data.decode("utf-8", "replace").split("\r\n")
            if not lines[0].startswith("OPTIONS "):
                return
            keep = ("via", "from", "to", "call-id", "cseq")
            echoed = [line for line in lines[1:] if line.partition(":")[0].strip().lower() in keep]
            echoed = [f"{line};tag=bench" if line.lower().startswith("to:") else line for line in echoed]
            self.transport.sendto("\r\n".join(["SIP/2.0 200 OK", *echoed, "Content-Length: 0", "", ""]).encode(), addr)

    async def answer_until_stopped() -> None:
        loop = asyncio.get_running_loop()
        transports = []
        for _ in range(sockets):
            transport, _ = await loop.create_datagram_endpoint(Answer, local_addr=(LOOPBACK, 0))
            transports.append(transport)
        conn.send([t.get_extra_info("sockname")[1] for t in transports])
        await loop.run_in_executor(None, conn.recv_bytes)
        for transport in transports:
            transport.close()

    with contextlib.suppress(EOFError):
        asyncio.run(answer_until_stopped())


def probe_runs(count: int, sockets: int, timeout: float) -> float:
    """The real prober over `count` loopback targets: all answering, then all refused; the seconds of the
    second run (the probing of the mass outage that (a) records)."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(sockets, child), daemon=True)
    server.start()
    child.close()
    if not parent.poll(30):
        raise SystemExit("the responder process did not start")
    ports: list[int] = parent.recv()
    targets = [f"sip:u{i // len(ports)}@{LOOPBACK}:{ports[i % len(ports)]}" for i in range(count)]
    plan = plan_of(targets)
    taken = 0.0

    def one_run(label: str) -> None:
        nonlocal taken
        started = time.perf_counter()
        results = checker.probe_targets(plan, timeout=timeout)
        seconds = taken = time.perf_counter() - started
        states = Counter(f"{r.state} {r.reason}" for r in results.values())
        mix = ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))
        print(f"(c) {label}: {count} targets probed in {seconds:.2f} s ({mix})")

    try:
        one_run("real prober, all answering")
        parent.send_bytes(b"stop")
        server.join(timeout=10)
        one_run("real prober, answering process gone (mass outage)")
    finally:
        with contextlib.suppress(OSError):
            parent.send_bytes(b"stop")
        parent.close()
        if server.is_alive():
            server.terminate()
            server.join(timeout=5)
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000, help="targets recorded in (a) and (b)")
    parser.add_argument("--probe-targets", type=int, default=10_000, help="loopback targets probed in (c)")
    parser.add_argument("--sockets", type=int, default=200, help="UDP sockets answering for the loopback targets")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="probe timeout (s)")
    parser.add_argument("--writers", type=int, default=checker.WRITERS, help="concurrent health writers")
    parser.add_argument("--skip-probe", action="store_true", help="only (a) and (b)")
    args = parser.parse_args()
    if not 10 <= args.targets <= 20_000 or not 10 <= args.probe_targets <= 20_000 or not 1 <= args.sockets <= 500:
        parser.error("keep it bounded: 10-20000 targets, 1-500 sockets")
    checker.WRITERS = args.writers
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {checker.WRITERS} concurrent health writers")
    with mock_aws():
        record = record_phases(args.targets)
    probe = args.timeout if args.skip_probe else probe_runs(args.probe_targets, args.sockets, args.timeout)
    total = record + probe
    print(
        f"goal: (a) + probing the outage <= 30 s: {record:.1f} + {probe:.1f} = {total:.1f} s: "
        f"{'met' if total <= 30 else 'MISSED'}"
    )
    if args.targets != 10_000:
        print(f"    (a) scaled linearly to 10,000 targets: {record * 10_000 / args.targets:.0f} s")
    return 0 if total <= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
