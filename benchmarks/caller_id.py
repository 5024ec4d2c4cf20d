"""What telling a valid caller ID from a withheld one costs a webhook container: the first dial rendered for a
caller that looks like a number loads libphonenumber (once per container), the first caller of each further
country loads that country's metadata (once), and every later render of a caller seen before is cached.
Each figure is the median of fresh processes. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/caller_id.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = """
import sys, time
from failover_did import twiml
from failover_did.routing import DialTier
from failover_did.rules.model import Tier

step = DialTier(0, Tier("+14155550111"), "primary", 1)


def ms(caller):
    started = time.perf_counter()
    twiml.render(step, base="https://h", caller=caller, called="+14155550100")
    return (time.perf_counter() - started) * 1000


twiml.render(step, base="https://h", caller="warm-up", called="+14155550100")  # TwiML itself warmed
first, other_country, seen = ms(sys.argv[1]), ms("+442079460958"), ms(sys.argv[1])
print(first, other_country, seen)
"""


def run(caller: str, runs: int) -> list[float]:
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE, caller], capture_output=True, text=True, check=True)
        rows.append([float(x) for x in out.stdout.split()])
    return [statistics.median(column) for column in zip(*rows, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for caller in ("+14155552671", "anonymous"):
        first, other, seen = run(caller, args.runs)
        print(
            f"first dial for caller {caller}: {first:.1f} ms; then a caller from another country: {other:.1f} ms; "
            f"the first caller again: {seen:.3f} ms (medians of {args.runs} fresh processes)"
        )


if __name__ == "__main__":
    main()
