"""`failover-did drill NUMBER`: prove, against a running webhook, that NUMBER fails over.

The checks, and why drill calls are never health evidence, are in `failover_did.drill.checks` (the
console's Drill button runs the same ones); this module finds the webhook and prints the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from failover_did.drill.checks import DEFAULT_CALLER, Check, run_drill, verdict
from failover_did.settings import settings
from failover_did_cli.args import NUMBER
from failover_did_cli.callsim import VOICE_URL_HELP, TwilioSimulator, find_voice_url, marked_as_test
from failover_did_cli.env import configure_aws

if TYPE_CHECKING:
    from failover_did.store.events import Event


def print_checks(checks: Sequence[Check]) -> None:
    table = Table("#", "check", "result", "detail")
    for index, check in enumerate(checks, 1):
        table.add_row(str(index), check.name, "PASS" if check.passed else "FAIL", check.detail)
    for column in table.columns[:3]:
        column.no_wrap = True
    Console(width=None if os.isatty(1) else 200, markup=False, highlight=False).print(table)


@click.command()
@click.argument("number", type=NUMBER)
@click.option(
    "--url",
    help=VOICE_URL_HELP.replace("to call", "to drill"),
)
@click.option("--caller", default=DEFAULT_CALLER, show_default=True, help="The caller's number (From).")
def drill(number: str, url: str | None, caller: str) -> None:
    """Check that NUMBER fails over: a SIP 503 and a ring-out on the primary each dial tier 1, the failover
    is in the event log, and a forged request gets 403. Exit 1 if any check fails.

    \b
    Requests are signed with TWILIO_AUTH_TOKEN, the token the webhook checks.
    The rule and the event log are read from the tables of FAILOVER_DID_LOCAL
    (the local stack), FAILOVER_DID_STACK (a deployed stack) or the plain AWS
    configuration. Drill calls are real webhook requests marked as tests (Voice URL ?test=1):
    their failovers are logged, but not counted against the monthly budget or as health checks.
    """
    token = os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise click.UsageError("set TWILIO_AUTH_TOKEN to the token the webhook checks signatures with")
    configure_aws()
    url = find_voice_url(url)
    from failover_did.store import events, rules_store
    from failover_did_cli.rules_cmd import store_errors

    with store_errors():
        stored = rules_store.get_stored(number)

    def find_events(number: str, since: datetime) -> list[Event]:
        return list(events.events_of(number, since))

    click.echo(f"drill {number} at {url} (caller {caller})")
    try:
        sim = TwilioSimulator(marked_as_test(url), token, account_sid=settings().account_sid)
        checks = run_drill(number, stored.rule if stored else None, sim, token, find_events)
    except OSError as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from error
    print_checks(checks)
    for check in checks:
        if not check.passed:
            click.echo(f"FAIL {check.name}: {check.detail}")
    click.echo(verdict(number, checks))
    if any(not c.passed for c in checks):
        raise SystemExit(1)
