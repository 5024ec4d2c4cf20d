"""Each command imports what it uses, not what the other commands use: `status` at a thousand numbers is
mostly start-up, and neither the local stack's server nor the prober's DNS resolver is any part
of it. Run in a fresh interpreter, as the operator runs the command."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from failover_did_cli.main import COMMANDS, cli

PROBE = """
import json, sys
from failover_did_cli.main import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

ELSEWHERE = {
    "failover_did_cli.local_stack": "the local stack",
    "failover_did_cli.drill_cmd": "drill",
    "failover_did.health.probe": "the prober",
    "dns.resolver": "the prober's DNS",
    "multiprocessing": "the local stack's containers",
}


def modules_after(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("status", "--help"), ("rules", "list", "--help"), ("events", "--help")])
def test_a_command_imports_none_of_the_others(args: tuple[str, ...]) -> None:
    loaded = modules_after(*args)
    assert f"failover_did_cli.{args[0]}_cmd" in loaded  # the probe sees what the command imported
    wrongly = {name: why for name, why in ELSEWHERE.items() if name in loaded}
    assert not wrongly, f"`{' '.join(args)}` imported {wrongly}"


def test_the_group_finds_every_command_by_name_and_lists_them_all() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None
