"""`failover-did calls [NUMBER] [--missed] [--since 24h] [--json]`: the call log, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from failover_did.call_record import CallOutcome, CallRecord
from failover_did_cli.args import NUMBER
from failover_did_cli.env import configure_aws
from failover_did_cli.events_cmd import parse_since
from failover_did_cli.output import print_table


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if at else None


def as_json(record: CallRecord) -> dict[str, Any]:
    return {
        "call_sid": record.call_sid,
        "number": record.number,
        "caller": record.caller,
        "started": iso(record.started),
        "ended": iso(record.ended),
        "outcome": record.outcome.value,
        "answered_by": record.answered_by,
        "tiers": [
            {"target": t.target, "outcome": t.outcome or "ringing", "sip_code": t.sip_code} for t in record.tiers
        ],
        "recording_url": record.recording_url,
        "recording_seconds": record.recording_seconds,
        "transcript": record.transcript,
    }


def how_it_ended(record: CallRecord) -> str:
    """The outcome in the words an engineer calling back would use."""
    waited = f" after {record.ring_seconds} s" if record.ring_seconds is not None else ""
    if record.outcome is CallOutcome.ANSWERED:
        return f"answered by {record.answered_by}"
    if record.outcome is CallOutcome.VOICEMAIL:
        return f"MISSED: voicemail ({record.recording_seconds} s){waited}"
    if record.outcome is CallOutcome.FINAL:
        return f"MISSED: final message{waited}"
    if record.outcome is CallOutcome.CALLER_HUNG_UP:
        return f"MISSED: caller hung up{waited} of ringing"
    if record.outcome is CallOutcome.UNKNOWN_NUMBER:
        return "number has no rule"
    return "in progress" if record.ended is None else "ended, outcome pending"


def tiers_text(record: CallRecord) -> str:
    lines = []
    for tier in record.tiers:
        code = f" SIP {tier.sip_code}" if tier.sip_code else ""
        lines.append(f"{tier.target}: {tier.outcome or 'ringing'}{code}")
    return "\n".join(lines) or "-"


@click.command()
@click.argument("number", type=NUMBER, required=False)
@click.option("--missed", is_flag=True, help="Only missed calls: final message, voicemail, caller hung up.")
@click.option("--since", "since_text", default="24h", show_default=True, help="30m, 24h, 7d or an ISO time.")
@click.option("--json", "as_json_array", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--tests", "with_tests", is_flag=True, help="Also list test calls (simulate, drill).")
def calls(number: str | None, missed: bool, since_text: str, as_json_array: bool, with_tests: bool) -> None:
    """Print the call log, newest first: who called which number, what was tried and how it ended."""
    configure_aws()
    from failover_did.store import call_log
    from failover_did_cli.rules_cmd import store_errors

    now = datetime.now(UTC)
    since = parse_since(since_text, now)
    with store_errors():
        found = list(call_log.calls_of(number, since) if number else call_log.all_calls(since, now))
    found = [c for c in found if (with_tests or not c.test) and (c.missed or not missed)]
    if as_json_array:
        click.echo(json.dumps([as_json(c) for c in found], indent=2))
        return
    table = Table("started (UTC)", "number", "caller", "how it ended", "tiers dialed", "recording")
    for record in found:
        started = (iso(record.started) or "")[:19].replace("T", " ")
        recording = f"{record.recording_url} ({record.recording_seconds} s)" if record.recording_url else "-"
        caller = f"{record.caller} (test)" if record.test else record.caller
        table.add_row(started, record.number, caller, how_it_ended(record), tiers_text(record), recording)
    print_table(table, width=220)
    kind = "missed call(s)" if missed else "call(s)"
    click.echo(f"{len(found)} {kind} since {since:%Y-%m-%d %H:%M}Z")
