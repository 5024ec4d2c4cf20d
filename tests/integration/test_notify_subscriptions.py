"""`rules apply`'s notify recipients under moto's SNS: each address gets one subscription filtered on the
numbers that name it; a second apply changes nothing; changed and removed recipients are refiltered and
unsubscribed; the stack's default subscriptions are never touched."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from failover_did.notices.subscriptions import sync
from failover_did.rules.validate import parse_rules_yaml

A, B = "+14155550100", "+14155550200"


def rules(yaml_numbers: str) -> list[Any]:
    return list(parse_rules_yaml("numbers:\n" + yaml_numbers).values())


def number(n: str, notify: str = "") -> str:
    line = f'  "{n}":\n    primary: {{target: "sip:desk@pbx.example.com"}}\n'
    return line + (f"    notify: {notify}\n" if notify else "")


@pytest.fixture
def sns() -> Any:
    with mock_aws():
        yield boto3.client("sns", region_name="us-east-1")


def policies(sns: Any, topic: str) -> dict[tuple[str, str], Any]:
    found = {}
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
        found[(sub["Protocol"], sub["Endpoint"])] = json.loads(attributes.get("FilterPolicy") or "null")
    return found


def test_recipients_are_subscribed_refiltered_and_unsubscribed(sns: Any) -> None:
    topic = sns.create_topic(Name="notify")["TopicArn"]
    default = {"audience": [{"exists": False}]}
    sns.subscribe(
        TopicArn=topic,
        Protocol="email",
        Endpoint="oncall@example.com",
        Attributes={"FilterPolicy": json.dumps(default)},
    )
    first = rules(
        number(A, '{email: [desk@example.com, oncall@example.com], sms: ["+14155550123"]}')
        + number(B, "{email: [desk@example.com]}")
    )
    actions = {(c.action, c.endpoint) for c in sync(sns, topic, first)}
    assert actions == {
        ("subscribed", "desk@example.com"),
        ("subscribed", "+14155550123"),
        ("conflict", "oncall@example.com"),  # already a default recipient: left as it is
    }
    assert policies(sns, topic) == {
        ("email", "oncall@example.com"): default,
        ("email", "desk@example.com"): {"number": [A, B]},  # one subscription for both numbers
        ("sms", "+14155550123"): {"number": [A]},
    }
    assert {c.action for c in sync(sns, topic, first)} == {"unchanged", "conflict"}  # idempotent

    second = rules(number(A, '{sms: ["+14155550123"]}') + number(B, "{email: [desk@example.com]}"))
    actions = {(c.action, c.endpoint) for c in sync(sns, topic, second)}
    assert actions == {("refiltered", "desk@example.com"), ("unchanged", "+14155550123")}
    assert policies(sns, topic)[("email", "desk@example.com")] == {"number": [B]}

    actions = {(c.action, c.endpoint) for c in sync(sns, topic, rules(number(A) + number(B)))}
    assert actions == {("unsubscribed", "desk@example.com"), ("unsubscribed", "+14155550123")}
    assert policies(sns, topic) == {("email", "oncall@example.com"): default}


def test_rules_apply_subscribes_the_stored_rules_recipients(
    aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did.store.tables import RuleItem
    from failover_did_cli.main import cli

    monkeypatch.setattr(RuleItem, "_connection", None)
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="notify")["TopicArn"]
    path = tmp_path / "rules.yaml"
    path.write_text("numbers:\n" + number(A, "{email: [desk@example.com]}"))
    result = CliRunner().invoke(cli, ["rules", "apply", str(path)], env={"NOTIFY_TOPIC_ARN": topic})
    assert result.exit_code == 0, result.output
    assert "notify: email desk@example.com subscribed for +14155550100" in result.output
    assert policies(sns, topic) == {("email", "desk@example.com"): {"number": [A]}}

    result = CliRunner().invoke(cli, ["rules", "apply", str(path)], env={"NOTIFY_TOPIC_ARN": ""})
    assert "no notify recipients subscribed: NOTIFY_TOPIC_ARN is not set" in result.output


def test_a_missing_topic_fails_apply_only_when_someone_is_to_be_subscribed(
    aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did.store.tables import RuleItem
    from failover_did_cli.main import cli

    monkeypatch.setattr(RuleItem, "_connection", None)
    gone = "arn:aws:sns:us-east-1:123456789012:gone"
    path = tmp_path / "rules.yaml"
    path.write_text("numbers:\n" + number(A))
    result = CliRunner().invoke(cli, ["rules", "apply", str(path)], env={"NOTIFY_TOPIC_ARN": gone})
    assert result.exit_code == 0 and "notify:" not in result.output

    path.write_text("numbers:\n" + number(A, "{email: [desk@example.com]}"))
    result = CliRunner().invoke(cli, ["rules", "apply", str(path)], env={"NOTIFY_TOPIC_ARN": gone})
    assert result.exit_code == 1
    assert "the rules were applied, but their notify recipients could not be subscribed" in result.output
