"""The `failover-did` command: one group, each command group in its own module."""

from __future__ import annotations

import click

from failover_did_cli import (
    calls_cmd,
    console_cmd,
    drill_cmd,
    events_cmd,
    local_cmd,
    probe_cmd,
    rules_cmd,
    simulate_cmd,
    status_cmd,
    twilio_cmd,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="failover-did", prog_name="failover-did", message="%(prog)s %(version)s")
def cli() -> None:
    """Keep a Twilio number answering when the destination behind it fails."""


cli.add_command(rules_cmd.rules)
cli.add_command(local_cmd.local)
cli.add_command(probe_cmd.probe)
cli.add_command(simulate_cmd.simulate)
cli.add_command(twilio_cmd.twilio)
cli.add_command(status_cmd.status)
cli.add_command(events_cmd.events)
cli.add_command(calls_cmd.calls)
cli.add_command(drill_cmd.drill)
cli.add_command(console_cmd.console)
