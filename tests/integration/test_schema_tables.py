"""schema.create_tables builds the template's tables on moto, and the PynamoDB models work against them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from failover_did.store.tables import CallItem, EventItem, HealthShard, RuleItem
from failover_did_cli import schema


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(var, raising=False)
    # The models cache a connection; make them open a fresh one inside the mock.
    for model in (RuleItem, CallItem, HealthShard, EventItem):
        monkeypatch.setattr(model, "_connection", None)
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def _key_pairs(key_schema: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(k["AttributeName"], k["KeyType"]) for k in key_schema}


def test_create_tables_matches_the_template(dynamodb: Any) -> None:
    names = schema.create_tables(dynamodb)
    assert names == {
        "RulesTable": "failover-did-rules",
        "CallsTable": "failover-did-calls",
        "HealthTable": "failover-did-health",
        "EventsTable": "failover-did-events",
        "CallLogTable": "failover-did-call-log",
    }
    specs = schema.table_specs()
    for logical_id, table_name in names.items():
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        spec = specs[logical_id]
        assert table["TableStatus"] == "ACTIVE"
        assert _key_pairs(table["KeySchema"]) == _key_pairs(spec.create_kwargs["KeySchema"])
        assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == (spec.attribute_types)
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if spec.ttl_attribute:
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == spec.ttl_attribute
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
    assert names["CallsTable"] == "failover-did-calls" and specs["CallsTable"].ttl_attribute == "expires_at"


def test_create_tables_is_idempotent(dynamodb: Any) -> None:
    first = schema.create_tables(dynamodb)
    dynamodb.put_item(TableName=first["RulesTable"], Item={"number": {"S": "+15550100"}})
    second = schema.create_tables(dynamodb)
    assert first == second
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(first.values())
    # existing tables are left alone, data included
    assert dynamodb.get_item(TableName=first["RulesTable"], Key={"number": {"S": "+15550100"}})["Item"]


def test_create_tables_with_custom_names_and_local_environment(dynamodb: Any) -> None:
    names = schema.create_tables(dynamodb, {"RulesTable": "t-rules", "CallsTable": "t-calls"})
    assert sorted(dynamodb.list_tables()["TableNames"]) == [
        "failover-did-call-log",
        "failover-did-events",
        "failover-did-health",
        "t-calls",
        "t-rules",
    ]
    assert schema.local_environment(names) == {
        "RULES_TABLE_NAME": "t-rules",
        "CALLS_TABLE_NAME": "t-calls",
        "HEALTH_TABLE_NAME": "failover-did-health",
        "EVENTS_TABLE_NAME": "failover-did-events",
        "CALL_LOG_TABLE_NAME": "failover-did-call-log",
    }


def test_create_tables_restores_a_missing_ttl(dynamodb: Any) -> None:
    spec = schema.table_specs()["CallsTable"]
    dynamodb.create_table(TableName="failover-did-calls", **spec.create_kwargs)  # made without TTL
    schema.create_tables(dynamodb)
    ttl = dynamodb.describe_time_to_live(TableName="failover-did-calls")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"


def test_pynamodb_models_work_against_the_created_tables(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    names = schema.create_tables(dynamodb, {"RulesTable": "it-rules", "CallsTable": "it-calls"})
    # tables.py reads the names from the environment at import time: point the models at ours.
    monkeypatch.setattr(RuleItem.Meta, "table_name", names["RulesTable"])
    monkeypatch.setattr(CallItem.Meta, "table_name", names["CallsTable"])

    rule = RuleItem("+15550100", rule={"primary": "sip:pbx@example.com", "tiers": []})
    rule.save()
    loaded = RuleItem.get("+15550100")
    assert loaded.rule == {"primary": "sip:pbx@example.com", "tiers": []}
    assert loaded.version == 1

    CallItem("CA123", item="screen#1", expires_at=1_900_000_000).save()
    assert CallItem.get("CA123", "screen#1").expires_at == 1_900_000_000
    raw = dynamodb.get_item(TableName=names["CallsTable"], Key={"call_sid": {"S": "CA123"}, "item": {"S": "screen#1"}})
    assert raw["Item"]["expires_at"] == {"N": "1900000000"}
