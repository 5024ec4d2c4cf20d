"""Integration fixtures: moto in-process with the template's tables, the demo-like rules applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from failover_did_cli import schema
from tests.support import RULES_YAML, Webhook


@pytest.fixture(autouse=True)
def own_environment() -> Iterator[None]:
    """A command run in-process with FAILOVER_DID_LOCAL aims boto3 at that endpoint through os.environ, and
    the table models keep the connection they made: neither may leak into the next test."""
    import os

    from failover_did.store import failovers, rules_store
    from failover_did.store.tables import CallItem, EventItem, FailoverCount, HealthShard, RuleItem, RulesSetItem

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    for model in (RuleItem, RulesSetItem, CallItem, HealthShard, EventItem, FailoverCount):
        model._connection = None
    failovers._connection.cache_clear()
    rules_store._connection_to.cache_clear()


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        schema.create_tables(client)
        from failover_did.store import breaker
        from failover_did.webhook import app

        app.rules.clear()
        app.health.clear()
        breaker.dynamodb.reset()
        yield client


@pytest.fixture
def rules(aws: Any) -> dict[str, Any]:
    from failover_did.rules.validate import parse_rules_yaml
    from failover_did.store.rules_store import apply_rules

    parsed = parse_rules_yaml(RULES_YAML)
    apply_rules(parsed)
    return parsed


@pytest.fixture
def webhook(rules: dict[str, Any]) -> Webhook:
    return Webhook()
