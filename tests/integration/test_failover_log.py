"""Failovers through the real handler are logged once per call and tier, counted once per call against
the number's monthly budget, and the budget crossing is signalled exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from failover_did.rules.validate import parse_rules_yaml
from failover_did.store import events, failovers
from failover_did.store.rules_store import apply_rules
from tests.support import Webhook, call_params

BUDGET_RULES = """
numbers:
  "+14155550300":
    primary: {target: "sip:desk@pbx.example.com"}
    failover: [{target: "+14155550333"}, {target: "+14155550334"}]
    monthly_failover_budget: 2
"""


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> list[str]:
    names: list[str] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            record = json.loads(line)
            names += [m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return names


def test_failover_is_logged_once_per_call_and_tier(webhook: Webhook) -> None:
    params = call_params(sid="CA" + "f" * 32, DialCallStatus="busy")
    webhook.post("/voice/action", params, "tier=0&hop=1")
    webhook.post("/voice/action", params, "tier=0&hop=1")  # Twilio retried
    webhook.post("/voice/action", {**params, "DialCallStatus": "no-answer"}, "tier=1&hop=2")
    logged = [e for e in events.events_of("+14155550100") if e.kind == "failover"]
    assert [(e.detail["from_tier"], e.detail["to_tier"], e.detail["reason"]) for e in logged] == [
        (0, 1, "busy"),
        (1, 2, "timeout"),
    ]
    assert logged[0].detail["call_sid"] == "CA" + "f" * 32 and logged[0].detail["to_target"] == "+14155550111"
    # one call, one failover counted for the month, however many tiers it walked
    assert failovers.failovers_this_month("+14155550100", datetime.now(UTC)) == 1


def test_failover_metric_is_not_repeated_by_a_retry(webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    params = call_params(sid="CA" + "e" * 32, DialCallStatus="failed", DialSipResponseCode="503")
    capsys.readouterr()
    webhook.post("/voice/action", params, "tier=0&hop=1")
    assert emitted_metrics(capsys).count("Failovers") == 1
    webhook.post("/voice/action", params, "tier=0&hop=1")
    assert emitted_metrics(capsys).count("Failovers") == 0


def test_budget_crossing_is_signalled_once(rules: Any, capsys: pytest.CaptureFixture[str]) -> None:
    apply_rules(parse_rules_yaml(BUDGET_RULES))
    webhook = Webhook()
    crossings = []
    for call in range(5):
        capsys.readouterr()
        params = call_params(sid=f"CA{call:032d}", to="+14155550300", DialCallStatus="busy")
        webhook.post("/voice/action", params, "tier=0&hop=1")
        crossings.append(emitted_metrics(capsys).count("FailoverBudgetExceeded"))
    assert crossings == [0, 0, 1, 0, 0]  # the third failover of the month exceeds a budget of 2
    assert failovers.failovers_this_month("+14155550300", datetime.now(UTC)) == 5


def test_budget_is_validated() -> None:
    from failover_did.rules.validate import RulesError

    with pytest.raises(RulesError, match="monthly_failover_budget: 0 must be a whole number"):
        parse_rules_yaml(BUDGET_RULES.replace("budget: 2", "budget: 0"))
    assert parse_rules_yaml(BUDGET_RULES)["+14155550300"].monthly_failover_budget == 2
