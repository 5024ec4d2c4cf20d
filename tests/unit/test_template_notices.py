"""template.yaml, the missed-call notices' part: the webhook and the flush may publish to the NotifyTopic
only; the flush runs every minute with exactly the grants its code uses; the default recipients take
alarms and the numbers without notify (messages without an `audience`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DEFAULT_FILTER = {"audience": [{"exists": False}]}


def grants(translated: dict[str, Any], function: str) -> dict[str, list[str]]:
    resources = translated["Resources"]
    role_id = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found: dict[str, list[str]] = {}
    for policy in resources[role_id]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                found.setdefault(action, []).extend(
                    t["Fn::GetAtt"][0] if "Fn::GetAtt" in t else t.get("Ref", repr(t)) for t in targets
                )
    return {action: sorted(targets) for action, targets in found.items()}


def test_the_flush_has_exactly_what_its_code_uses(translated: dict[str, Any]) -> None:
    assert grants(translated, "NoticeFlushFunction") == {
        "sns:Publish": ["NotifyTopic"],
        "dynamodb:GetItem": ["RulesTable"],
        "dynamodb:Query": ["EventsTable"],
        "dynamodb:PutItem": ["EventsTable"],
    }


def test_the_webhook_publishes_to_the_notify_topic_only(translated: dict[str, Any]) -> None:
    assert grants(translated, "VoiceFunction")["sns:Publish"] == ["NotifyTopic"]


def test_the_flush_runs_every_minute_and_its_handler_exists(template: dict[str, Any]) -> None:
    function = template["Resources"]["NoticeFlushFunction"]["Properties"]
    (event,) = function["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(1 minute)", "Description": "failover-did missed-call digests"},
    }
    module, _, name = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    assert function["Environment"]["Variables"]["NOTIFY_TOPIC_ARN"] == {"Ref": "NotifyTopic"}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "NoticeFlushLogGroup"}}


def test_default_recipients_take_messages_without_an_audience(template: dict[str, Any]) -> None:
    for name in ("AlertEmailSubscription", "AlertSmsSubscription"):
        properties = template["Resources"][name]["Properties"]
        assert properties["FilterPolicy"] == DEFAULT_FILTER
        assert properties["FilterPolicyScope"] == "MessageAttributes"


def test_the_notices_audience_matches_the_default_filter() -> None:
    from failover_did.notices.missed import AUDIENCE

    assert list(DEFAULT_FILTER) == [AUDIENCE]
