"""Time and peak memory of judging hostile rules files.

* a 354-byte "billion laughs" (nested aliases that would expand to 9**9 strings): refused;
* 20,000 nested `[` (deeper than the composer's recursion): refused;
* N numbers, each with an invalid phone-number key and an unusable target: the slowest input per byte
  we know (libphonenumber's emergency checks of an invalid number), a problem per number; extrapolated to
  a file of the 4 MiB limit;
* N valid numbers (accepted), extrapolated the same way.

Run:  .venv/bin/python benchmarks/rules_hostile.py [--numbers 1000]   (at most 10,000 valid numbers)
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from failover_did.rules.loading import MAX_FILE_BYTES
from failover_did.rules.validate import RulesError, parse_rules_yaml


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(c)}: &{chr(c)} [{','.join(['*' + chr(c - 1)] * 9)}]" for c in range(ord("b"), ord("j"))]
    return "\n".join([*lines, "numbers: *i", ""])


def many_numbers(count: int, key: Callable[[int], str], target: str) -> str:
    rows = [f'  "{key(i)}": {{primary: {{target: "{target}"}}}}' for i in range(count)]
    return "\n".join(["numbers:", *rows, ""])


def judge(text: str) -> str:
    try:
        parse_rules_yaml(text)
    except RulesError as error:
        return f"refused, {len(error.problems):,} problem(s): {error.problems[0][:60]}"
    return "accepted"


def measure(name: str, text: str, *, trace: bool, extrapolate: bool = False) -> None:
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    outcome = judge(text)
    elapsed = time.perf_counter() - started
    memory = ""
    if trace:
        memory = f"  peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB"
        tracemalloc.stop()
    size = len(text.encode())
    line = f"{name:<30} {size:>9,} B  {elapsed:7.2f} s{memory}  {outcome}"
    if extrapolate:
        line += f"\n{'':<30} at the {MAX_FILE_BYTES:,}-byte limit: about {elapsed * MAX_FILE_BYTES / size:.0f} s"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1000)
    n = parser.parse_args().numbers
    measure("billion laughs", billion_laughs(), trace=True)
    measure("20,000 nested [", "[" * 20_000 + "]" * 20_000, trace=True)
    bad = many_numbers(n, lambda i: f"+1415{i:07d}", "sip:desk@a..b")
    measure(f"{n:,} invalid numbers", bad, trace=False, extrapolate=True)
    good = many_numbers(min(n, 10_000), lambda i: f"+1212555{i:04d}", "+14155550111")
    measure(f"{n:,} valid numbers", good, trace=False, extrapolate=True)


if __name__ == "__main__":
    main()
