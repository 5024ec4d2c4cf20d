"""`failover-did status [NUMBER]`: each number's cascade, its destinations' health and one status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.output import print_table


def health_text(state: str | None, since: str, reason: str) -> str:
    if state is None:
        return "not probed"
    if state == "unknown":
        return "not checked yet"
    since_text = f" since {since[11:16]}Z" if since else ""
    if state == "down":
        return f"DOWN{since_text} ({reason})"
    return f"{state} ({reason})" if reason and state == "degraded" else state


def missed_today(now: datetime) -> dict[str, list[str]]:
    """Number -> "HH:MM caller" of each missed call since midnight UTC, newest first (one Query)."""
    from failover_did.store import call_log

    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    missed: dict[str, list[str]] = {}
    for call in call_log.all_calls(midnight, now):
        if call.missed and not call.test:
            missed.setdefault(call.number, []).append(f"{call.started:%H:%M} {call.caller}")
    return missed


@click.command()
@click.argument("number", type=NUMBER, required=False)
def status(number: str | None) -> None:
    """Show each number's primary, tiers, health, last failover, failovers this month and its status:
    Protected, Unprotected, At risk or Failing over."""
    configure_aws()
    from failover_did.protection import protection
    from failover_did.routing import probe_target
    from failover_did.store import events as event_store
    from failover_did.store import failovers, health_store, rules_store
    from failover_did_cli.rules_cmd import store_errors

    now = datetime.now(UTC)
    with store_errors():
        stored = [s.rule for s in rules_store.all_rules() if number in (None, s.rule.number)]
        health = {h.target: h for h in health_store.all_health()}
        last_run = health_store.last_run()
        rows = []
        for rule in sorted(stored, key=lambda r: r.number):
            recent = [e for e in event_store.events_of(rule.number, now - timedelta(days=31)) if e.kind == "failover"]
            rows.append((rule, recent[-1] if recent else None, failovers.failovers_this_month(rule.number, now)))
        missed = missed_today(now)
    if number and not stored:
        raise click.ClickException(f"no rule for {number}")
    table = Table("number", "status", "cascade (health)", "last failover", "this month", "missed today")
    for column in table.columns:
        column.no_wrap = True
    for rule, last, count in rows:
        states = {}
        lines = []
        for index, tier in enumerate(rule.tiers):
            probed = tier.is_probed
            item = health.get(probe_target(tier)) if probed else None
            state = (item.state if item else "unknown") if probed else None
            if state is not None:
                states[probe_target(tier)] = state
            text = health_text(state, item.since if item else "", item.reason if item else "")
            lines.append(f"{'primary' if index == 0 else f'tier {index}'}: {tier.target}  [{text}]")
        verdict = protection(rule, states)
        budget = f"{count} / {rule.monthly_failover_budget}" if rule.monthly_failover_budget else str(count)
        last_text = f"{last.at[:16].replace('T', ' ')}Z to tier {last.detail.get('to_tier')}" if last else "-"
        missed_text = str(len(missed.get(rule.number, []))) + "".join(f"\n{c}" for c in missed.get(rule.number, [])[:3])
        table.add_row(rule.number, f"{verdict.status}\n{verdict.why}", "\n".join(lines), last_text, budget, missed_text)
    print_table(table, width=220)
    checked = f"last health check {last_run}" if last_run else "no health check has run yet"
    click.echo(f"{len(rows)} number(s); {checked}")
