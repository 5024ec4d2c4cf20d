"""`failover-did events [NUMBER] [--since ...]`: the event log as a table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from failover_did.event_words import KINDS as KINDS  # the local stack imports these from here
from failover_did.event_words import describe as describe
from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.output import Page, matches_prefix, number_filter, paging, print_table

_AGO = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `24h`, `7d`, or an ISO date/time (UTC when no zone is given)."""
    match = _AGO.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use 30m, 24h, 7d or an ISO time such as 2026-11-28T10:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.argument("number", type=NUMBER, required=False)
@click.option("--since", "since_text", default="7d", show_default=True, help="30m, 24h, 7d or an ISO time.")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True, help="Only these kinds (repeatable).")
@number_filter
@paging
def events(number: str | None, since_text: str, kinds: tuple[str, ...], prefix: str | None, page: Page) -> None:
    """Print the event log: failovers, destinations unreachable and recovered, rule changes (who changed
    which number, and what: before -> after). Newest last; --page counts from the newest."""
    configure_aws()
    from failover_did.store import events as store
    from failover_did_cli.rules_cmd import store_errors

    since = parse_since(since_text, datetime.now(UTC))
    with store_errors():
        found = [
            e
            for e in (store.events_of(number, since) if number else store.all_events(since))
            if (not kinds or e.kind in kinds) and matches_prefix(e.number, prefix)
        ]
    found.sort(key=lambda e: (e.at, e.number), reverse=True)
    shown = list(reversed(page.of(found)))
    table = Table("time (UTC)", "number", "event", "details")
    for event in shown:
        table.add_row(event.at.replace("T", " ")[:19], event.number, event.kind, describe(event.kind, event.detail))
    print_table(table)
    click.echo(f"{page.footer(len(found), 'event(s)')} since {since:%Y-%m-%d %H:%M}Z")
