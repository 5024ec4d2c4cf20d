"""The `failover-did` command: one group, each command group in its own module, imported only when that
command runs (or `--help` lists it): a command pays for its own imports, never for the others'."""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, tuple[str, str]] = {
    "calls": ("failover_did_cli.calls_cmd", "calls"),
    "console": ("failover_did_cli.console_cmd", "console"),
    "drill": ("failover_did_cli.drill_cmd", "drill"),
    "events": ("failover_did_cli.events_cmd", "events"),
    "local": ("failover_did_cli.local_cmd", "local"),
    "probe": ("failover_did_cli.probe_cmd", "probe"),
    "rules": ("failover_did_cli.rules_cmd", "rules"),
    "simulate": ("failover_did_cli.simulate_cmd", "simulate"),
    "status": ("failover_did_cli.status_cmd", "status"),
    "twilio": ("failover_did_cli.twilio_cmd", "twilio"),
}
"""Command name -> (module, attribute) of its click command."""


class LazyGroup(click.Group):
    """A group whose commands are imported by name when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command")
        self.add_command(command, cmd_name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="failover-did", prog_name="failover-did", message="%(prog)s %(version)s")
def cli() -> None:
    """Keep a Twilio number answering when the destination behind it fails."""
