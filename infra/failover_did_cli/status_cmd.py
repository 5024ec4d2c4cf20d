"""`failover-did status [NUMBER]`: each number's cascade, its destinations' health and one status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from failover_did.health.hysteresis import DEGRADED, DOWN, UNVERIFIED, TargetHealth
from failover_did.protection import AT_RISK, FAILING_OVER, PROTECTED, UNPROTECTED, Protection
from failover_did.rules.model import Rule
from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.output import Page, matches_prefix, number_filter, paging, print_table

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


STATUSES = {"protected": PROTECTED, "unprotected": UNPROTECTED, "at-risk": AT_RISK, "failing-over": FAILING_OVER}


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
        judged = [(rule, *cascade_of(rule, health)) for rule in stored]
        judged = [j for j in judged if j[1].status in statuses]
        total, shown = len(judged), page.of(judged)
    else:  # only the page shown is judged
        total, shown = len(stored), [(rule, *cascade_of(rule, health)) for rule in page.of(stored)]
    numbers = [rule.number for rule, *_ in shown]
    with store_errors():
        last = event_store.last_failovers(now - timedelta(days=31), numbers) if numbers else {}
        counts = failovers.counts_this_month(numbers, now) if numbers else {}
        missed = missed_today(now)
    table = Table("number", "status", "cascade (health)", "last failover", "this month", "missed today")
    for column in table.columns:
        column.no_wrap = True
    unreachable: list[str] = []
    for rule, verdict, lines, unverified in shown:
        unreachable += unverified
        count = counts.get(rule.number, 0)
        budget = f"{count} / {rule.monthly_failover_budget}" if rule.monthly_failover_budget else str(count)
        event = last.get(rule.number)
        last_text = f"{event.at[:16].replace('T', ' ')}Z to tier {event.detail.get('to_tier')}" if event else "-"
        missed_text = str(len(missed.get(rule.number, []))) + "".join(f"\n{c}" for c in missed.get(rule.number, [])[:3])
        table.add_row(rule.number, f"{verdict.status}\n{verdict.why}", "\n".join(lines), last_text, budget, missed_text)
    print_table(table, width=220)
    checked = f"last health check {last_run}" if last_run else "no health check has run yet"
    click.echo(f"{page.footer(total, 'number(s)')}; {checked}")
    if unreachable:
        click.echo(ADVICE.format(targets=", ".join(sorted(set(unreachable)))))


def cascade_of(rule: Rule, health: dict[str, TargetHealth]) -> tuple[Protection, list[str], list[str]]:
    """A rule's status, one line per tier with its health, and its probed targets the prober cannot reach."""
    from failover_did.protection import protection
    from failover_did.routing import probe_target

    states = {}
    lines = []
    unreachable = []
    for index, tier in enumerate(rule.tiers):
        target = probe_target(tier)
        item = health.get(target) if tier.is_judged else None
        if item is not None:
            states[target] = item.state
        text = health_text(item, tier.is_probed) if tier.is_judged else "not probed"
        if tier.is_probed and item is not None and item.state == UNVERIFIED and item.checked_at:
            unreachable.append(target)
        lines.append(f"{'primary' if index == 0 else f'tier {index}'}: {tier.target}  [{text}]")
    return protection(rule, states), lines, unreachable
