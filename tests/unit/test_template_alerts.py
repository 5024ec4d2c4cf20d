"""template.yaml, the alert formatter's part: a failed notification ends in a dead-letter queue whose alarm
reaches people without the formatter, within the free alarm allowance; the formatter's grants fit its code."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from failover_did.alerts import dedupe

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
QUEUE = {"Fn::GetAtt": ["FormatterDeadLetterQueue", "Arn"]}


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == kind}


def test_a_failed_invocation_is_retried_twice_then_dead_lettered(translated: dict[str, Any]) -> None:
    (config,) = of_type(translated["Resources"], "AWS::Lambda::EventInvokeConfig").values()
    assert config["FunctionName"] == {"Ref": "FormatterFunction"}
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 3600
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE}}


def test_a_notification_sns_could_not_deliver_is_dead_lettered_too(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    (subscription,) = (
        s for s in of_type(resources, "AWS::SNS::Subscription").values() if s["TopicArn"] == {"Ref": "AlarmTopic"}
    )
    assert subscription["Protocol"] == "lambda"
    assert subscription["RedrivePolicy"] == {"deadLetterTargetArn": QUEUE}
    policy = resources["FormatterDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "FormatterDeadLetterQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == QUEUE
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "AlarmTopic"}}}


def test_the_dead_letter_queue_keeps_messages_two_weeks_encrypted(template: dict[str, Any]) -> None:
    queue = template["Resources"]["FormatterDeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"] == {"MessageRetentionPeriod": 14 * 86400, "SqsManagedSseEnabled": True}


def test_the_dead_letter_alarm_goes_straight_to_people(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["FormatterDeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FormatterDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanThreshold",
        0,
    )
    assert alarm["TreatMissingData"] == "notBreaching"  # an idle queue sends no datapoints
    # Not through the AlarmTopic: that path runs the formatter, which is what failed.
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "NotifyTopic"}]
    assert "InsufficientDataActions" not in alarm
    assert len(alarm["AlarmDescription"]) <= 1024 and "dead-letter queue" in alarm["AlarmDescription"]


def test_alarms_stay_within_the_ten_free_ones(template: dict[str, Any]) -> None:
    assert len(of_type(template["Resources"], "AWS::CloudWatch::Alarm")) <= 10


def test_the_formatter_may_send_to_its_queue_and_needs_no_delete(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    role_id = resources["FormatterFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in resources[role_id]["Properties"].get("Policies", [])
        for s in policy["PolicyDocument"]["Statement"]
    ]
    on_events: set[str] = set()
    on_queue: set[str] = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for target in targets:
            if target == {"Fn::GetAtt": ["EventsTable", "Arn"]}:
                on_events.update(actions)
            if target == QUEUE:
                on_queue.update(actions)
    # dedupe.py writes claims with conditional puts and gives them back with a put: no DeleteItem, no GetItem.
    assert on_events == {"dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem"}
    assert on_queue == {"sqs:SendMessage"}


def test_an_abandoned_claim_expires_between_the_timeout_and_lambdas_first_retry(template: dict[str, Any]) -> None:
    formatter = template["Resources"]["FormatterFunction"]["Properties"]
    assert formatter["Timeout"] < dedupe.CLAIM_SECONDS < 60
    module, _, name = formatter["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
