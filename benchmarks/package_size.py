"""Lambda package size: builds each function with functions/Makefile as `sam build` does (python3.13, arm64)
and prints its size unzipped and zipped, and its largest parts. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/package_size.py [--top 8] [--naive]

--naive also measures what a default `sam build` shipped before the Makefile: the Lambda's three direct
dependencies (twilio, aws-lambda-powertools, pynamodb) with everything they pull, botocore included, and
without phonenumbers (the full one adds 48 MB). pip downloads from PyPI. Target: each package <= 25 MB
unzipped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ("VoiceFunction", "HealthCheckFunction", "FormatterFunction")
LAMBDA_PLATFORM = ["--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.13"]
NAIVE = ["twilio>=9.3,<10", "aws-lambda-powertools>=3.5,<4", "pynamodb>=6.0,<7"]
MB = 1_000_000


def build(function: str, artifacts: Path) -> None:
    command = ["make", "-s", "--no-print-directory", "-C", str(REPO / "functions"), f"build-{function}"]
    subprocess.run([*command, f"ARTIFACTS_DIR={artifacts}", f"PYTHON={sys.executable}"], check=True)


def naive_build(artifacts: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*pip, "--only-binary=:all:", *LAMBDA_PLATFORM, "--target", str(artifacts), *NAIVE], check=True)


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zipped_size(root: Path, into: Path) -> int:
    with zipfile.ZipFile(into, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root))
    return into.stat().st_size


def largest(root: Path, top: int) -> list[tuple[int, str]]:
    """The biggest top-level entries, and inside the biggest packages their biggest directories."""
    entries = [(size(p), p.name) for p in root.iterdir()]
    for _, name in sorted(entries, reverse=True)[:3]:
        if (root / name).is_dir():
            entries += [(size(p), f"{name}/{p.name}") for p in (root / name).iterdir() if p.is_dir()]
    return sorted(entries, reverse=True)[:top]


def report(label: str, root: Path, work: Path, top: int) -> None:
    unzipped, zipped = size(root), zipped_size(root, work / f"{root.name}.zip")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"{label}: {unzipped / MB:.1f} MB unzipped, {zipped / MB:.1f} MB zipped, {files} files")
    for bytes_, name in largest(root, top):
        print(f"  {bytes_ / MB:6.2f} MB  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=8, help="largest parts to list per package")
    parser.add_argument("--naive", action="store_true", help="also measure a plain install with all dependencies")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="package-size-") as tmp:
        work = Path(tmp)
        for function in FUNCTIONS:
            build(function, work / function)
            report(function, work / function, work, args.top)
        if args.naive:
            naive_build(work / "naive")
            report("naive: a default sam build", work / "naive", work, args.top)
    print("target: <= 25 MB unzipped per function")


if __name__ == "__main__":
    main()
