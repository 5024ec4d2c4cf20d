"""How long one health-checker run takes over 10,000 targets, DynamoDB emulated in-process (moto).

(a) record phase of a mass outage: every target was up and had failed one check; this run sees them all
    down, so all 10,000 go down at once: 10,000 conditional health writes and 10,000 events;
(b) a steady run: every target up for a while, nothing changes: no writes at all;
(c) whole runs with the real prober against 10,000 loopback SIP targets (a child process answers OPTIONS
    with 200 on a few hundred UDP sockets): first run (10,000 new items), then the answering process
    stops and two more runs find every port refused, the second of which takes them all down.

Loopback only; ALLOW_PRIVATE_TARGETS=true is set for the prober. The goal is (a) plus one probe timeout
within 30 s; the exit status is 1 when that is missed.

Run:  .venv/bin/python benchmarks/checker_scale.py  [--targets 10000] [--sockets 200] [--skip-probe]
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
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

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

from failover_did.health import checker  # noqa: E402
from failover_did.health.hysteresis import DOWN, UP, Thresholds  # noqa: E402
from failover_did.health.probe import DEFAULT_TIMEOUT  # noqa: E402
from failover_did.health.transitions import Use  # noqa: E402
from failover_did.observability import metrics  # noqa: E402
from failover_did.store import health_store  # noqa: E402
from failover_did.store.tables import EventItem, HealthItem  # noqa: E402
from failover_did_cli import schema  # noqa: E402

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
    with HealthItem.batch_write() as batch:
        for target in targets:
            batch.save(
                HealthItem(
                    target,
                    state=UP,
                    failures=failures,
                    successes=successes,
                    reason="200",
                    checked_at=stamp,
                    since=stamp,
                    reached_at=stamp,
                    version=1,
                )
            )


def timed_record(plan: dict[str, list[Use]], results: dict[str, Verdict], at: datetime) -> tuple[float, checker.Report]:
    started = time.perf_counter()
    report = checker.record_results(plan, results, at, Thresholds())  # type: ignore[arg-type]
    metrics.clear_metrics()
    return time.perf_counter() - started, report


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
    print(f"    events written: {events_written()}")

    fresh_tables()
    seed(targets, failures=0, successes=20, at=T0)
    steady = {t: Verdict(UP, "200") for t in targets}
    steady_seconds, steady_report = timed_record(plan, steady, T0 + timedelta(minutes=1))
    print(f"(b) steady run, record phase: {count} targets unchanged in {steady_seconds:.2f} s ({describe(steady_report)})")
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

    async def main() -> None:
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
        asyncio.run(main())


def whole_runs(count: int, sockets: int, timeout: float) -> float:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(sockets, child), daemon=True)
    server.start()
    child.close()
    if not parent.poll(30):
        raise SystemExit("the responder process did not start")
    ports: list[int] = parent.recv()
    targets = [f"sip:u{i // len(ports)}@{LOOPBACK}:{ports[i % len(ports)]}" for i in range(count)]
    plan = plan_of(targets)
    fresh_tables()
    worst_probe = 0.0

    def one_run(label: str, minute: int) -> None:
        nonlocal worst_probe
        started = time.perf_counter()
        results = checker.probe_targets(plan, timeout=timeout)
        probed = time.perf_counter() - started
        worst_probe = max(worst_probe, probed)
        seconds, report = timed_record(plan, dict(results), T0 + timedelta(minutes=minute))  # type: ignore[arg-type]
        states = Counter(str(r.state) for r in results.values())
        print(
            f"(c) {label}: probe {probed:.2f} s ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))}), "
            f"record {seconds:.2f} s, whole run {probed + seconds:.2f} s ({describe(report)})"
        )

    try:
        one_run("first run, all answering", 0)
        parent.send_bytes(b"stop")
        server.join(timeout=10)
        one_run("answering process gone, first failure", 1)
        one_run("answering process gone, all go down", 2)
    finally:
        with contextlib.suppress(OSError):
            parent.send_bytes(b"stop")
        parent.close()
        if server.is_alive():
            server.terminate()
            server.join(timeout=5)
    return worst_probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--sockets", type=int, default=200, help="UDP sockets answering for the loopback targets")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="probe timeout (s)")
    parser.add_argument("--skip-probe", action="store_true", help="only (a) and (b)")
    args = parser.parse_args()
    if not 10 <= args.targets <= 20_000 or not 1 <= args.sockets <= 500:
        parser.error("keep it bounded: 10-20000 targets, 1-500 sockets")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {checker.WRITERS} concurrent health writers")
    with mock_aws():
        record = record_phases(args.targets)
        probe = args.timeout if args.skip_probe else whole_runs(args.targets, args.sockets, args.timeout)
    total = record + probe
    print(f"goal: (a) + probing <= 30 s: {record:.1f} + {probe:.1f} = {total:.1f} s: {'met' if total <= 30 else 'MISSED'}")
    return 0 if total <= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
