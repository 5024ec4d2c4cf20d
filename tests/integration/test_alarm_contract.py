"""Every alarm in template.yaml names exactly the namespace, metric and dimensions the code emits
(Powertools adds a `service` dimension), and the deployment stays within the free alarm allowance."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from failover_did import metric_names
from failover_did.health.transitions import METRIC_OF_KIND
from failover_did_cli import schema
from tests.support import Webhook, call_params

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
CONSTANTS = {
    value: name
    for name, value in vars(metric_names).items()
    if name.isupper() and isinstance(value, str) and name not in ("NAMESPACE", "SERVICE")
}


def alarms() -> dict[str, dict[str, Any]]:
    template = schema.load_template()
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def emf_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_alarms_on_our_metrics_name_constants_the_code_emits() -> None:
    source = "\n".join(p.read_text() for p in FUNCTIONS.rglob("*.py"))
    ours = {k: v for k, v in alarms().items() if v["Namespace"] == metric_names.NAMESPACE}
    assert len(ours) >= 5
    for logical_id, alarm in ours.items():
        constant = CONSTANTS.get(alarm["MetricName"])
        assert constant, f"{logical_id}: {alarm['MetricName']} is not in metric_names"
        # A destination's news is emitted by its kind (transitions.METRIC_OF_KIND -> count_metrics).
        emitted = (
            re.search(rf"add_metric\(name=m\.{constant}\b", source) or alarm["MetricName"] in METRIC_OF_KIND.values()
        )
        assert emitted, f"{constant} is never emitted"
        assert alarm["Dimensions"] == [{"Name": "service", "Value": metric_names.SERVICE}], logical_id


def test_functions_emit_under_the_namespace_and_service_the_alarms_use() -> None:
    template = schema.load_template()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        variables = resource["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == metric_names.NAMESPACE, logical_id
        assert variables["POWERTOOLS_SERVICE_NAME"] == metric_names.SERVICE, logical_id


def test_webhook_emf_has_exactly_the_alarmed_dimensions(webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    webhook.post("/voice", call_params(), signature="forged")
    records = emf_records(capsys.readouterr().out)
    emitted = {
        metric["Name"]: directive
        for record in records
        for directive in record["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert {"Failovers", "SignatureRejected"} <= set(emitted)
    for directive in emitted.values():
        assert directive["Namespace"] == metric_names.NAMESPACE and directive["Dimensions"] == [["service"]]
    assert all(record["service"] == metric_names.SERVICE for record in records)
    # per-call and per-number facts are properties, never dimensions (each dimension set is billed)
    assert any(record.get("number") == "+14155550100" and record.get("call_sid") for record in records)


def test_checker_emf_has_exactly_the_alarmed_dimensions(
    rules: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did.health import checker
    from failover_did.health.probe import ProbeResult, State
    from failover_did_cli.apigw import LambdaContext

    async def all_up(targets: Any, timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, State.UP, "200", 1.0) for t in targets}

    monkeypatch.setattr(checker, "_probe", all_up)
    capsys.readouterr()
    checker.handler({}, LambdaContext())
    (record,) = emf_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert {m["Name"] for m in directive["Metrics"]} >= {"HealthCheckRuns", "DestinationsDown"}
    assert directive["Dimensions"] == [["service"]] and record["service"] == metric_names.SERVICE
    assert record["DestinationsDown"] in (0.0, [0.0])


def test_the_unverified_alarm_metric_is_emitted_once_per_target_with_the_service_dimension_only(
    rules: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did.health import checker
    from failover_did.health.probe import ProbeResult, State
    from failover_did_cli.apigw import LambdaContext

    async def silent(targets: Any, timeout: float) -> dict[str, ProbeResult]:
        return {t: ProbeResult(t, State.DOWN, "timeout", None) for t in targets}

    alarm = alarms()["DestinationUnverifiedAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (metric_names.NAMESPACE, "DestinationUnverified")
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        300,
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    monkeypatch.setattr(checker, "_probe", silent)
    capsys.readouterr()
    checker.handler({}, LambdaContext())
    (record,) = emf_records(capsys.readouterr().out)
    directives = record["_aws"]["CloudWatchMetrics"]
    (directive,) = [d for d in directives if any(m["Name"] == alarm["MetricName"] for m in d["Metrics"])]
    assert directive["Namespace"] == alarm["Namespace"]
    assert directive["Dimensions"] == [[d["Name"] for d in alarm["Dimensions"]]]
    assert record["service"] == alarm["Dimensions"][0]["Value"]
    assert record[alarm["MetricName"]] in (3.0, [3.0])  # the three SIP targets of the rules, never reached
    checker.handler({}, LambdaContext())  # told once per target: the next run says nothing more
    (again,) = emf_records(capsys.readouterr().out)
    assert alarm["MetricName"] not in again and "HealthCheckRuns" in again


def test_alarms_fit_the_free_allowance_and_reach_the_alarm_topic() -> None:
    found = alarms()
    assert len(found) <= 10  # CloudWatch bills alarms beyond 10 a month
    for logical_id, alarm in found.items():
        if logical_id == "FormatterDeadLetterAlarm":  # says the formatter failed: bypasses it (test_template_alerts)
            continue
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id


def test_detailed_metrics_are_opt_in_with_one_low_cardinality_dimension(
    webhook: Webhook, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    webhook.post("/voice/action", call_params(sid="CA" + "7" * 32, DialCallStatus="busy"), "tier=0&hop=1")
    plain = {
        m["Name"]
        for r in emf_records(capsys.readouterr().out)
        for d in r["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert "Failovers" in plain and not plain & {"FailoversByReason", "DialOutcomes"}

    monkeypatch.setenv("DETAILED_METRICS", "true")
    webhook.post(
        "/voice/action",
        call_params(sid="CA" + "8" * 32, DialCallStatus="failed", DialSipResponseCode="503"),
        "tier=0&hop=1",
    )
    detailed = {
        m["Name"]: (d["Dimensions"], record)
        for record in emf_records(capsys.readouterr().out)
        for d in record["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    dims, record = detailed["FailoversByReason"]
    assert dims == [["service", "reason"]] and record["reason"] == "sip-5xx" and record["service"] == "failover-did"
    dims, record = detailed["DialOutcomes"]
    assert dims == [["service", "outcome"]] and record["outcome"] == "failed"


def dashboard_metrics() -> set[str]:
    """Our metric names plotted on the dashboard (the body is JSON once `${...}` is filled in)."""
    body = schema.load_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    plotted: set[str] = set()
    for widget in widgets:
        namespace = None
        for row in widget["properties"].get("metrics", []):
            namespace = row[0] if row[0] != "." else namespace
            if namespace == metric_names.NAMESPACE:
                plotted.add(row[1])
    return plotted


def test_every_alarmed_metric_of_ours_is_on_the_dashboard() -> None:
    plotted = dashboard_metrics()
    assert plotted <= set(CONSTANTS), f"not in metric_names: {sorted(plotted - set(CONSTANTS))}"
    alarmed = {a["MetricName"] for a in alarms().values() if a.get("Namespace") == metric_names.NAMESPACE}
    assert alarmed <= plotted, f"alarmed but not plotted: {sorted(alarmed - plotted)}"
