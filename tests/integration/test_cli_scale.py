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


def numbers_in(output: str) -> list[str]:
    return re.findall(r"^\S*\s*(\+1\d{10})\b", output, flags=re.MULTILINE)


@pytest.fixture
def many(aws: Any) -> list[str]:
    lines = ["numbers:"]
    numbers = [f"+1415555{1000 + i}" if i % 2 else f"+1212555{1000 + i}" for i in range(COUNT)]
    for index, number in enumerate(numbers):
        primary = "sip:desk@pbx.example.com" if index % 3 else "+14155559999"
        lines.append(f'  "{number}": {{primary: {{target: "{primary}"}}, failover: [{{target: "+16505550100"}}]}}')
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
    everything = run("status", "--limit", "0").output
    status_of = dict(re.findall(r"^\S*\s*(\+1\d{10})\s+(Protected|Unprotected|At risk|Failing over)", everything, re.M))
    assert len(status_of) == COUNT and len(set(status_of.values())) > 1
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
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\S*\s*(\+1\d{10})\b.*$", result.output, re.M)}
    row = rows[failed]
    assert f"{now:%Y-%m-%d} " in row and "to tier 1" in row and row.rstrip(" │|").endswith("2")
    others = [row for number, row in rows.items() if number != failed]
    assert all("to tier" not in row for row in others)


def test_events_filter_by_kind_and_prefix_and_page_from_the_newest(many: list[str]) -> None:
    now = datetime.now(UTC)
    for index, number in enumerate(many[:3]):
        failovers.record_failover(
            failovers.Failover(number, f"CA{index}", 0, 1, "+16505550100", "busy", first_of_call=True),
            now.replace(microsecond=0).replace(second=index),
        )
    result = run("events", "--kind", "failover", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert numbers_in(result.output) == many[1:3]
    assert "3 event(s); showing 1-2 (page 1 of 2; --page 2 for the next)" in result.output
    assert numbers_in(run("events", "--kind", "failover", "--limit", "2", "--page", "2").output) == many[:1]
    assert numbers_in(run("events", "--kind", "recovered").output) == []
    assert numbers_in(run("events", "--prefix", many[2]).output) == [many[2]]
