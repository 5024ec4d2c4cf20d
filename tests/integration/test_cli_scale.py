"""`rules list`, `status` and `events` at many numbers: filtered by number prefix, status and kind, and paged;
`status` reads in bulk yet shows each number's own last failover and count. In-process against moto."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from failover_did.rules.validate import parse_rules_yaml
from failover_did.store import failovers
from failover_did.store.rules_store import apply_rules
from failover_did_cli.main import cli

COUNT = 25


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"FAILOVER_DID_LOCAL": "", "FAILOVER_DID_STACK": ""})
    assert "Traceback" not in result.output
    return result


def rows(output: str) -> list[list[str]]:
    """The table's rows that start a number, split into cells."""
    cells = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in output.splitlines() if "│" in line]
    return [row for row in cells if re.fullmatch(r"\+1\d{10}", row[0])]


def numbers_in(output: str) -> list[str]:
    return [row[0] for row in rows(output)]


def event_numbers(output: str) -> list[str]:
    """The number column of `events` (its second)."""
    cells = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in output.splitlines() if "│" in line]
    return [row[1] for row in cells if len(row) > 1 and re.fullmatch(r"\+1\d{10}", row[1])]


@pytest.fixture
def many(aws: Any) -> list[str]:
    lines = ["numbers:"]
    numbers = [f"+1415555{1000 + i}" if i % 2 else f"+1212555{1000 + i}" for i in range(COUNT)]
    for index, number in enumerate(numbers):
        failover = ["", "sip:other@pbx.example.com"][index % 4] if index % 4 < 2 else "+16505550100"
        tiers = f', failover: [{{target: "{failover}"}}]' if failover else ""  # none: Unprotected
        lines.append(f'  "{number}": {{primary: {{target: "sip:desk@pbx.example.com"}}{tiers}}}')
    apply_rules(parse_rules_yaml("\n".join(lines) + "\n"))
    return sorted(numbers)


@pytest.mark.parametrize("command", [("rules", "list"), ("status",)])
def test_pages_cover_every_number_once_in_order(many: list[str], command: tuple[str, ...]) -> None:
    seen: list[str] = []
    for page in (1, 2, 3):
        result = run(*command, "--limit", "10", "--page", str(page))
        assert result.exit_code == 0, result.output
        seen += numbers_in(result.output)
    assert seen == many
    first = run(*command, "--limit", "10")
    assert f"{COUNT} number(s); showing 1-10 (page 1 of 3; --page 2 for the next)" in first.output
    past = run(*command, "--limit", "10", "--page", "4")
    assert numbers_in(past.output) == [] and "page 4 is past the last (page 3)" in past.output


@pytest.mark.parametrize("command", [("rules", "list"), ("status",)])
@pytest.mark.parametrize("prefix", ["+1212", "1212", "+1415555100"])
def test_prefix_filters(many: list[str], command: tuple[str, ...], prefix: str) -> None:
    result = run(*command, "--prefix", prefix, "--limit", "0")
    assert result.exit_code == 0, result.output
    wanted = "+" + prefix.lstrip("+")
    assert numbers_in(result.output) == [n for n in many if n.startswith(wanted)]


@pytest.mark.parametrize("command", [("rules", "list"), ("status",), ("events",)])
def test_a_bad_prefix_is_named(aws: Any, command: tuple[str, ...]) -> None:
    result = run(*command, "--prefix", "+1-415")
    assert result.exit_code == 2
    assert "'+1-415': a number prefix is digits" in result.output


def test_status_filter_keeps_exactly_the_numbers_in_that_status(many: list[str]) -> None:
    status_of = {row[0]: row[1] for row in rows(run("status", "--limit", "0").output)}
    assert len(status_of) == COUNT and set(status_of.values()) == {"Protected", "Unprotected", "At risk"}
    for option, word in (("protected", "Protected"), ("unprotected", "Unprotected"), ("at-risk", "At risk")):
        result = run("status", "--status", option, "--limit", "0")
        assert numbers_in(result.output) == sorted(n for n, s in status_of.items() if s == word)


def test_status_shows_each_numbers_own_last_failover_and_count(many: list[str]) -> None:
    now = datetime.now(UTC)
    failed = many[7]
    for sid in ("CA1", "CA2"):
        failovers.record_failover(
            failovers.Failover(failed, sid, 0, 1, "+16505550100", "busy", first_of_call=True), now
        )
    result = run("status", "--limit", "0")
    assert result.exit_code == 0, result.output
    by_number = {row[0]: row for row in rows(result.output)}
    # last failover, failovers this month, missed calls today
    assert by_number[failed][3:] == [f"{now:%Y-%m-%d %H:%M}Z to tier 1", "2", "0"]
    assert all(row[3:] == ["-", "0", "0"] for number, row in by_number.items() if number != failed)


def test_events_filter_by_kind_and_prefix_and_page_from_the_newest(many: list[str]) -> None:
    now = datetime.now(UTC)
    for index, number in enumerate(many[:3]):
        failovers.record_failover(
            failovers.Failover(number, f"CA{index}", 0, 1, "+16505550100", "busy", first_of_call=True),
            now.replace(microsecond=0).replace(second=index),
        )
    result = run("events", "--kind", "failover", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert event_numbers(result.output) == many[1:3]
    assert "3 event(s); showing 1-2 (page 1 of 2; --page 2 for the next)" in result.output
    assert event_numbers(run("events", "--kind", "failover", "--limit", "2", "--page", "2").output) == many[:1]
    assert event_numbers(run("events", "--kind", "recovered").output) == []
    assert event_numbers(run("events", "--prefix", many[2]).output) == [many[2]]
