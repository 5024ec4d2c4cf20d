"""`rules validate` with a stack set reads the stored numbers, so it refuses the loop `rules apply` would; a
stack it cannot reach is one line, and the file is still judged alone. The command runs as an operator runs
it (its own process) against a moto server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover_did_cli import schema
from failover_did_cli.env import LOCAL_FALLBACK_BUCKET, local_client
from failover_did_cli.local_stack import free_port, serialise_dynamodb

STORED = 'numbers:\n  "+14155550100": {primary: {target: "sip:desk@pbx.example.com"}}\n'
LOOP = (
    'numbers:\n  "+14155550200":\n'
    '    {primary: {target: "sip:a@pbx.example.com"}, failover: [{target: "+14155550100"}]}\n'
)


def validate(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("FAILOVER_DID_LOCAL", "FAILOVER_DID_STACK")}
    return subprocess.run(
        [sys.executable, "-m", "failover_did_cli", "rules", "validate", str(path)],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def stack() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    serialise_dynamodb()  # as the local stack runs it
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    schema.create_tables(local_client("dynamodb", url))
    local_client("s3", url).create_bucket(Bucket=LOCAL_FALLBACK_BUCKET)
    stored = subprocess.run(
        [sys.executable, "-m", "failover_did_cli", "rules", "apply", "/dev/stdin"],
        input=STORED,
        env={**os.environ, "FAILOVER_DID_LOCAL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stored.returncode == 0, stored.stderr
    yield url
    server.stop()


def test_a_failover_to_a_stored_number_is_a_loop_with_the_stack_set(stack: str, tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    result = validate(path, FAILOVER_DID_LOCAL=stack)
    assert result.returncode == 1, result.stdout
    assert "+14155550100" in result.stderr and "loop" in result.stderr.lower()
    assert "could not reach" not in result.stderr


def test_a_file_without_a_loop_says_what_it_was_checked_against(stack: str, tmp_path: Path) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text(LOOP.replace("+14155550100", "+14155550111"))
    result = validate(path, FAILOVER_DID_LOCAL=stack)
    assert result.returncode == 0, result.stderr
    assert f"{path}: 1 number(s) OK (checked against the 1 number(s) stored in the stack)" in result.stdout


def test_without_a_stack_the_file_alone_passes(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: 1 number(s) OK\n")


def test_an_unreachable_stack_is_one_line_and_the_file_is_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    result = validate(path, FAILOVER_DID_LOCAL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{path}: could not reach the stack, judged the file alone: ")
    assert "is `failover-did local` running?" in line
    assert "1 number(s) OK" in result.stdout
