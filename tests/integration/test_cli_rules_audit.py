"""`rules apply` and `rules delete` leave one audit event per number changed (who, what: before -> after),
`events` shows them, and `rules delete` asks before deleting. The CLI runs in-process against moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from failover_did.store import events as event_store
from failover_did_cli import rules_cmd
from failover_did_cli.main import cli
from tests.support import RULES_YAML

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"  # what moto's STS says the caller is


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env={"FAILOVER_DID_LOCAL": "", "FAILOVER_DID_STACK": ""})


def rule_events() -> list[event_store.Event]:
    return sorted((e for e in event_store.all_events() if e.kind == "rule-changed"), key=lambda e: (e.at, e.number))


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    return path


def test_apply_writes_one_event_per_number_changed_naming_the_caller(aws: Any, rules_file: Path) -> None:
    result = run("rules", "apply", str(rules_file))
    assert result.exit_code == 0, result.output
    added = rule_events()
    assert [(e.number, e.detail["action"], e.detail["by"]) for e in added] == [
        ("+14155550100", "added", MOTO_CALLER),
        ("+14155550200", "added", MOTO_CALLER),
    ]
    assert "primary.target: (none) -> sip:sales@pbx.example.com" in added[1].detail["diff"]

    assert run("rules", "apply", str(rules_file)).exit_code == 0
    assert len(rule_events()) == 2  # nothing changed, nothing logged

    rules_file.write_text(RULES_YAML.replace("sip:sales@pbx.example.com", "sip:sales@pbx2.example.com"))
    assert run("rules", "apply", str(rules_file)).exit_code == 0
    changed = [e for e in rule_events() if e.detail["action"] == "changed"]
    assert [(e.number, e.detail["diff"]) for e in changed] == [
        ("+14155550200", ["primary.target: sip:sales@pbx.example.com -> sip:sales@pbx2.example.com"])
    ]
    assert changed[0].detail["version"] == 2


def test_prune_and_delete_are_logged_and_events_shows_them(aws: Any, rules_file: Path, tmp_path: Path) -> None:
    assert run("rules", "apply", str(rules_file)).exit_code == 0
    only_one = tmp_path / "one.yaml"
    only_one.write_text(RULES_YAML.split('  "+14155550200":')[0])
    assert run("rules", "apply", str(only_one), "--prune").exit_code == 0
    assert run("rules", "delete", "+14155550100", "--yes").exit_code == 0
    deleted = [e for e in rule_events() if e.detail["action"] == "deleted"]
    assert sorted(e.number for e in deleted) == ["+14155550100", "+14155550200"]
    assert all(any(line.endswith("-> (none)") for line in e.detail["diff"]) for e in deleted)

    shown = run("events", "--kind", "rule-changed", "--limit", "0")
    assert shown.exit_code == 0, shown.output
    assert shown.output.count(f"by {MOTO_CALLER}") == 4
    assert "rule deleted" in shown.output and "4 event(s)" in shown.output


def test_delete_without_a_terminal_or_yes_refuses_and_keeps_the_rule(aws: Any, rules_file: Path) -> None:
    assert run("rules", "apply", str(rules_file)).exit_code == 0
    result = run("rules", "delete", "+14155550100")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: not deleting +14155550100: no terminal to confirm on; pass --yes to delete it"
    )
    assert run("rules", "show", "+14155550100").exit_code == 0
    assert not [e for e in rule_events() if e.detail["action"] == "deleted"]


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_delete_asks_on_a_terminal(
    aws: Any, rules_file: Path, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    assert run("rules", "apply", str(rules_file)).exit_code == 0
    monkeypatch.setattr(rules_cmd, "stdin_is_terminal", lambda: True)
    result = run("rules", "delete", "+14155550200", input=answer)
    assert "Delete the rule of +14155550200 (sip:sales@pbx.example.com -> +14155550222)?" in result.output
    assert (result.exit_code == 0) is deleted
    still_there = run("rules", "show", "+14155550200").exit_code == 0
    assert still_there is not deleted
    if not deleted:
        assert "not deleted: +14155550200 is unchanged" in result.output


def test_an_audit_write_that_fails_is_said_and_exits_1_after_the_changes(
    aws: Any, rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynamodb.exceptions import PutError

    from failover_did.store import audit

    def refuse(*args: object, **kwargs: object) -> int:
        raise PutError("throttled")

    monkeypatch.setattr(audit, "record_rule_changes", refuse)
    result = run("rules", "apply", str(rules_file))
    assert result.exit_code == 1
    assert "+ +14155550100 added" in result.output
    assert "the rules were changed (+14155550100, +14155550200), but their audit events could not be written" in (
        result.output
    )
