"""How long the operator's commands take at 1,000 numbers on the local stack's AWS emulation (a moto server
on loopback, as `failover-did local` runs it): each command runs as the operator runs it, in its own
process, so the figures include start-up. Seeds 1,000 rules (applied with `rules apply`), the health of the
probed destinations and a failover on every fifth number. Prints figures (wall time, the command's CPU time
and the emulation's CPU time meanwhile, then the load average); asserts nothing about time.

    .venv/bin/python benchmarks/cli_scale.py [--numbers 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

COMMANDS: list[list[str]] = [
    ["--help"],
    ["rules", "list"],
    ["rules", "list", "--limit", "0"],
    ["rules", "list", "--prefix", "+1415555"],
    ["status"],
    ["status", "--limit", "0"],
    ["status", "--status", "failing-over"],
    ["status", "+14155550007"],
    ["events"],
    ["events", "--limit", "0"],
    ["events", "--kind", "failover", "--prefix", "+1415555"],
]


def rules_yaml(count: int) -> str:
    lines = ["numbers:"]
    for index in range(count):
        number = f"+1415555{index:04d}" if index < count // 2 else f"+1212555{index:04d}"
        primary = f"sip:desk{index % 50}@pbx{index % 50}.example.com"
        lines.append(
            f'  "{number}": {{primary: {{target: "{primary}"}}, '
            f'failover: [{{target: "+1650555{index:04d}"}}, {{target: "sip:oncall@dr.example.net"}}]}}'
        )
    return "\n".join(lines) + "\n"


def seed(count: int) -> None:
    """Health for every probed destination (a few down) and failovers on every fifth number."""
    from failover_did_cli.env import configure_aws

    configure_aws()
    from failover_did.store import failovers, health_store

    now = datetime.now(UTC)
    for host in range(50):
        result = "down" if host < 3 else "up"
        for _ in range(2):
            health_store.record_check(f"sip:desk{host}@pbx{host}.example.com", result, "503" if host < 3 else "", now)
    health_store.mark_run(now, 51)
    for index in range(0, count, 5):
        number = f"+1415555{index:04d}" if index < count // 2 else f"+1212555{index:04d}"
        failover = failovers.Failover(number, f"CA{index:032x}", 0, 1, f"+1650555{index:04d}", "busy", True)
        failovers.record_failover(failover, now)


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (Linux /proc; 0 elsewhere): the emulation's share of each command."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(args: list[str], env: dict[str, str], emulation: int = 0) -> tuple[float, float, float, str]:
    """Wall seconds, the command's CPU seconds, the emulation's CPU seconds meanwhile, its last line. CPU
    time is what the figures mean on a machine shared with other work, where wall time waits for a core."""
    before, emulation_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(emulation)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "failover_did_cli", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return elapsed, cpu, cpu_seconds(emulation) - emulation_before, last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    from failover_did_cli import schema
    from failover_did_cli.env import LOCAL_FALLBACK_BUCKET, local_client
    from failover_did_cli.local_stack import free_port, start_emulation

    port = free_port()  # the emulation as `failover-did local` runs it, in its own process
    server = start_emulation(port)
    url = f"http://127.0.0.1:{port}"
    try:
        schema.create_tables(local_client("dynamodb", url))
        local_client("s3", url).create_bucket(Bucket=LOCAL_FALLBACK_BUCKET)
        env = {**os.environ, "FAILOVER_DID_LOCAL": url}
        env.pop("FAILOVER_DID_STACK", None)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "rules.yaml"
            path.write_text(rules_yaml(options.numbers))
            took, cpu, moto, last = timed(["rules", "apply", str(path)], env, server.pid)
            print(
                f"rules apply ({options.numbers} added) {took:6.2f} s  CPU {cpu:.2f} s + emulation {moto:.2f} s  {last}"
            )
            os.environ["FAILOVER_DID_LOCAL"] = url
            seed(options.numbers)
            took, cpu, moto, last = timed(["rules", "validate", str(path)], env, server.pid)
            print(f"rules validate (against the stack)  {took:6.2f} s  CPU {cpu:.2f} s + emulation {moto:.2f} s")
        for args in COMMANDS:
            runs = [timed(args, env, server.pid) for _ in range(options.runs)]
            wall, cpu, moto = (statistics.median(run[i] for run in runs) for i in range(3))
            print(
                f"{' '.join(args):<40} {wall:6.2f} s  CPU {cpu:4.2f} s + emulation {moto:4.2f} s"
                f"  (medians of {options.runs})   {runs[-1][3][:70]}"
            )
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
