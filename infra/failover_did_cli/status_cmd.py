"""`failover-did status [NUMBER]`: each number's cascade, its destinations' health and one status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from failover_did.status_view import ADVICE, STATUSES, missed_today, number_view
from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.output import Page, matches_prefix, number_filter, paging, print_table


@click.command()
@click.argument("number", type=NUMBER, required=False)
@number_filter
@click.option(
    "--status",
    "wanted",
    type=click.Choice(sorted(STATUSES)),
    multiple=True,
    help="Only numbers in this status (repeatable).",
)
@paging
def status(number: str | None, prefix: str | None, wanted: tuple[str, ...], page: Page) -> None:
    """Show each number's primary, tiers, health, last failover, failovers this month and its status:
    Protected, Unprotected, At risk or Failing over."""
    configure_aws()
    from failover_did.store import events as event_store
    from failover_did.store import failovers, health_store, rules_store
    from failover_did_cli.rules_cmd import store_errors

    now = datetime.now(UTC)
    with store_errors():  # a few bulk reads, whatever the number of numbers
        stored = sorted(
            (
                s.rule
                for s in rules_store.all_rules()
                if number in (None, s.rule.number) and matches_prefix(s.rule.number, prefix)
            ),
            key=lambda r: r.number,
        )
        health = {h.target: h for h in health_store.all_health()}
        last_run = health_store.last_run()
    if number and not stored:
        raise click.ClickException(f"no rule for {number}")
    statuses = {STATUSES[w] for w in wanted}
    if statuses:  # every number judged, to keep those in the statuses asked for
        judged = [number_view(rule, health) for rule in stored]
        judged = [j for j in judged if j.protection.status in statuses]
        total, shown = len(judged), page.of(judged)
    else:  # only the page shown is judged
        total, shown = len(stored), [number_view(rule, health) for rule in page.of(stored)]
    numbers = [view.rule.number for view in shown]
    with store_errors():
        last = event_store.last_failovers(now - timedelta(days=31), numbers) if numbers else {}
        counts = failovers.counts_this_month(numbers, now) if numbers else {}
        missed = missed_today(now)
    table = Table("number", "status", "cascade (health)", "last failover", "this month", "missed today")
    for column in table.columns:
        column.no_wrap = True
    unreachable: list[str] = []
    for view in shown:
        rule, verdict = view.rule, view.protection
        unreachable += view.unreachable
        count = counts.get(rule.number, 0)
        budget = f"{count} / {rule.monthly_failover_budget}" if rule.monthly_failover_budget else str(count)
        event = last.get(rule.number)
        last_text = f"{event.at[:16].replace('T', ' ')}Z to tier {event.detail.get('to_tier')}" if event else "-"
        missed_text = str(len(missed.get(rule.number, []))) + "".join(f"\n{c}" for c in missed.get(rule.number, [])[:3])
        table.add_row(
            rule.number, f"{verdict.status}\n{verdict.why}", "\n".join(view.lines), last_text, budget, missed_text
        )
    print_table(table, width=220)
    checked = f"last health check {last_run}" if last_run else "no health check has run yet"
    click.echo(f"{page.footer(total, 'number(s)')}; {checked}")
    if unreachable:
        click.echo(ADVICE.format(targets=", ".join(sorted(set(unreachable)))))
