"""Start-up of `failover-did local` with many numbers: how long from launching the command until a call to
the last number is dialed, and until the banner is out.

    .venv/bin/python benchmarks/start_local.py [--numbers 1000] [--runs 3]

Each run writes a rules file of N numbers (phone-number primaries: nothing is probed off this machine),
starts the stack on free loopback ports, and calls the last number from the moment it starts: calls are
refused until the stack listens, and the first answer must dial that number's primary (never "unknown
number"). Figures only; the exit status is 1 if any answer was wrong.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from failover_did_cli.callsim import TwilioSimulator  # noqa: E402
from failover_did_cli.local_stack import free_port  # noqa: E402

CLI = str(Path(sys.executable).with_name("failover-did"))
TOKEN = "start-up-benchmark-token"


def rules_text(count: int) -> str:
    lines = ["numbers:"]
    for i in range(count):
        lines += [f'  "+1415555{i:04d}":', f'    primary: {{target: "+1628555{i:04d}"}}']
    return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    """CPU time so far of a process and its children (Linux /proc; 0 elsewhere): the stack's own process,
    its AWS emulation and its webhook containers."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def one_run(count: int, folder: Path) -> tuple[float, float, float, bool]:
    rules = folder / "rules.yaml"
    rules.write_text(rules_text(count))
    port, aws_port = free_port(), free_port()
    log = folder / "local.log"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}
    env.pop("FAILOVER_DID_LOCAL", None)
    command = [CLI, "local", "--port", str(port), "--aws-port", str(aws_port), "--rules", str(rules)]
    last = f"+1415555{count - 1:04d}"
    sim = TwilioSimulator(f"http://127.0.0.1:{port}/voice", TOKEN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"failover-did local exited {process.returncode}:\n{log.read_text()}")
            try:
                reply = sim.call(last).start()
                break
            except OSError:
                time.sleep(0.02)
        answered = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        right = reply.dial is not None and reply.dial.targets == (f"+1628555{count - 1:04d}",)
        while "is running" not in log.read_text():
            time.sleep(0.02)
        banner = time.perf_counter() - started
        return answered, banner, cpu, right
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    answers: list[float] = []
    banners: list[float] = []
    cpus: list[float] = []
    wrong = 0
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            answered, banner, cpu, right = one_run(args.numbers, Path(folder))
        answers.append(answered)
        banners.append(banner)
        cpus.append(cpu)
        wrong += not right
        verdict = "right" if right else "WRONG"
        print(
            f"run: first call answered {answered:.2f} s (CPU by then {cpu:.2f} s: the command, its emulation "
            f"and containers), banner {banner:.2f} s, answer {verdict}"
        )
    print(
        f"{args.numbers} numbers, {args.runs} runs: launch -> first call to the last number answered "
        f"median {statistics.median(answers):.2f} s (max {max(answers):.2f} s); "
        f"CPU by then median {statistics.median(cpus):.2f} s; banner median {statistics.median(banners):.2f} s; "
        f"wrong answers {wrong}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    raise SystemExit(1 if wrong else 0)


if __name__ == "__main__":
    main()
