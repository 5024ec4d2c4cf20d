"""`failover-did drill NUMBER`: prove, against a running webhook, that NUMBER fails over.

Plays Twilio's side of a few calls (signed like `simulate`) and checks each outcome against the number's
rule as stored in the table:

1. SIP 503 injection: the primary leg ends `failed` with `DialSipResponseCode=503` -> tier 1 is dialed;
2. Ringing timeout: the primary leg ends `no-answer` -> tier 1 is dialed;
3. Event logged: the failover of check 1 (or, if it did not fail over, check 2) is in the event log;
4. Signature enforced: the incoming call signed with a wrong token gets 403.

Drill calls are marked as tests: the Voice URL carries `test=1` (inside the signature, so a captured real
request cannot gain it) and the webhook keeps it on every URL it hands back. They come from +15005550006,
a Twilio magic test number, with CallSids of Twilio's form. Their failovers are logged, marked as tests;
they count neither as health checks nor against the monthly budget, and raise no failover metric.
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
