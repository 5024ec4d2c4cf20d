"""`failover-did status [NUMBER]`: each number's cascade, its destinations' health and one status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from failover_did.health.hysteresis import DEGRADED, DOWN, UNVERIFIED, TargetHealth
from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.output import print_table

ADVICE = (
    "the health checker cannot reach {targets}; they are dialed as usual. Allow the probe's source address "
    "in the PBX firewall, give the tier a `health:` URL, or set `probe: false` on it."
)


def health_text(health: TargetHealth | None, probed: bool) -> str:
    """One tier's health in plain words (a phone number without `health:` has none)."""
    if health is None:
        return "not checked yet" if probed else "not probed (live calls only)"
    since = f" since {health.since[11:16]}Z" if health.since else ""
    answered = health.answered_at
    if health.state == DOWN:
        text = f"DOWN{since} ({health.reason})"
        if answered and answered >= health.since:
            text += f"; but a live call was answered {answered[11:16]}Z"
        return text + ("" if probed else "; not probed: dialed again 10 min after going down")
    if not probed:
        return "not probed (live calls only)" + (f"; last answered {answered[11:16]}Z" if answered else "")
    if health.state == UNVERIFIED:
        if not health.checked_at:
            return "not checked yet"
        live = f"; live calls answered (last {answered[11:16]}Z)" if answered else ""
        return f"UNVERIFIED: the prober cannot reach it ({health.reason}){live}"
    if health.state == DEGRADED and health.reason:
        return f"degraded ({health.reason})"
    return health.state


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
    if number and not stored:
        raise click.ClickException(f"no rule for {number}")
    table = Table("number", "status", "cascade (health)", "last failover", "this month")
    for column in table.columns:
        column.no_wrap = True
    unreachable: list[str] = []
    for rule, last, count in rows:
        states = {}
        lines = []
        for index, tier in enumerate(rule.tiers):
            target = probe_target(tier)
            item = health.get(target) if tier.is_judged else None
            if item is not None:
                states[target] = item.state
            text = health_text(item, tier.is_probed) if tier.is_judged else "not probed"
            if tier.is_probed and item is not None and item.state == UNVERIFIED and item.checked_at:
                unreachable.append(target)
            lines.append(f"{'primary' if index == 0 else f'tier {index}'}: {tier.target}  [{text}]")
        verdict = protection(rule, states)
        budget = f"{count} / {rule.monthly_failover_budget}" if rule.monthly_failover_budget else str(count)
        last_text = f"{last.at[:16].replace('T', ' ')}Z to tier {last.detail.get('to_tier')}" if last else "-"
        table.add_row(rule.number, f"{verdict.status}\n{verdict.why}", "\n".join(lines), last_text, budget)
    print_table(table, width=220)
    checked = f"last health check {last_run}" if last_run else "no health check has run yet"
    click.echo(f"{len(rows)} number(s); {checked}")
    if unreachable:
        click.echo(ADVICE.format(targets=", ".join(sorted(set(unreachable)))))
