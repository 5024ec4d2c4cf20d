"""Configuration of the fallback publishing and of one-variable stacks: FALLBACK_*, FAILOVER_DID_STACK,
FAILOVER_DID_LOCAL, and the local bucket's policy derived from the template."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import click
import pytest
from botocore.stub import Stubber

from failover_did_cli import env
from failover_did_cli.fallback_publish import FallbackConfig, NotConfigured, config_from_env
from failover_did_cli.local_stack import fallback_bucket_policy

VARIABLES = (
    env.STACK_ENV,
    env.LOCAL_ENV,
    env.FALLBACK_BUCKET_ENV,
    env.FALLBACK_BASE_URL_ENV,
    *env.STACK_OUTPUT_ENV.values(),
    "AWS_ENDPOINT_URL",
)
OUTPUTS = {
    "RulesTableName": "prod-RulesTable-1",
    "CallsTableName": "prod-CallsTable-1",
    "HealthTableName": "prod-HealthTable-1",
    "EventsTableName": "prod-EventsTable-1",
    "FallbackBucketName": "prod-fallbackbucket-1",
    "FallbackBaseUrl": "https://prod-fallbackbucket-1.s3.eu-west-1.amazonaws.com/fallback/",
    "VoiceUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/voice",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commands set variables themselves (os.environ.update): the whole environment is put back."""
    saved = dict(os.environ)
    for name in VARIABLES:
        os.environ.pop(name, None)
    monkeypatch.setattr(env, "_stack_outputs", {})
    yield
    os.environ.clear()
    os.environ.update(saved)


def stubbed_cloudformation(outputs: dict[str, str], calls: list[str]) -> Any:
    client = boto3.client("cloudformation", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "prod",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": "prod"},
    )
    stubber.activate()

    def factory() -> Any:
        calls.append("describe_stacks")
        return client

    return factory


def test_config_needs_bucket_and_base_url_and_says_why() -> None:
    with pytest.raises(NotConfigured, match=r"FALLBACK_BUCKET is not set .*FAILOVER_DID_STACK"):
        config_from_env({})
    with pytest.raises(NotConfigured, match="FALLBACK_BASE_URL is not"):
        config_from_env({"FALLBACK_BUCKET": "b"})
    with pytest.raises(NotConfigured, match="FALLBACK_BUCKET is not"):
        config_from_env({"FALLBACK_BASE_URL": "https://b.s3.amazonaws.com/fallback/"})
    with pytest.raises(NotConfigured, match="must end in /fallback/"):
        config_from_env({"FALLBACK_BUCKET": "b", "FALLBACK_BASE_URL": "https://b.s3.amazonaws.com/other/"})
    with pytest.raises(NotConfigured, match="not an http"):
        config_from_env({"FALLBACK_BUCKET": "b", "FALLBACK_BASE_URL": "s3://b/fallback/"})


def test_config_urls_and_object_keys() -> None:
    config = config_from_env({"FALLBACK_BUCKET": "b", "FALLBACK_BASE_URL": "https://b.s3.amazonaws.com/fallback"})
    assert config == FallbackConfig("b", "https://b.s3.amazonaws.com/fallback/")
    assert config.url("k3y") == "https://b.s3.amazonaws.com/fallback/k3y.xml"
    assert config.object_key("k3y") == "fallback/k3y.xml"


def test_stack_outputs_set_tables_and_fallback_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.STACK_ENV, "prod")
    monkeypatch.setenv("EVENTS_TABLE_NAME", "mine")  # already set: wins
    calls: list[str] = []
    factory = stubbed_cloudformation(OUTPUTS, calls)
    assert env.use_stack_if_set(factory) == "prod"
    assert os.environ["RULES_TABLE_NAME"] == "prod-RulesTable-1"
    assert os.environ["CALLS_TABLE_NAME"] == "prod-CallsTable-1"
    assert os.environ["HEALTH_TABLE_NAME"] == "prod-HealthTable-1"
    assert os.environ["EVENTS_TABLE_NAME"] == "mine"
    assert config_from_env() == FallbackConfig("prod-fallbackbucket-1", OUTPUTS["FallbackBaseUrl"])
    assert env.use_stack_if_set(factory) == "prod"  # read once per process
    assert env.current_stack_outputs()["VoiceUrl"] == OUTPUTS["VoiceUrl"]
    assert calls == ["describe_stacks"]


def test_a_stack_without_fallback_outputs_leaves_fallback_unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.STACK_ENV, "prod")
    old = {k: v for k, v in OUTPUTS.items() if not k.startswith("Fallback")}
    env.use_stack_if_set(stubbed_cloudformation(old, []))
    with pytest.raises(NotConfigured, match="FALLBACK_BUCKET is not set"):
        config_from_env()


def test_unreadable_stack_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.STACK_ENV, "nope")
    client = boto3.client("cloudformation", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
    stubber.activate()
    with pytest.raises(click.ClickException, match=r"cannot read stack 'nope' .*does not exist"):
        env.use_stack_if_set(lambda: client)


def test_local_wins_over_stack_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env.STACK_ENV, "prod")
    monkeypatch.setenv(env.LOCAL_ENV, "http://127.0.0.1:3001")
    assert env.use_stack_if_set(lambda: pytest.fail("must not read the stack")) is None
    assert "both set; using the local stack" in capsys.readouterr().err


def test_local_stack_variable_defaults_the_fallback_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.LOCAL_ENV, "http://127.0.0.1:3001")
    assert env.use_local_stack_if_set() == "http://127.0.0.1:3001"
    assert config_from_env() == FallbackConfig(
        "failover-did-fallback", "http://127.0.0.1:3001/failover-did-fallback/fallback/"
    )


def test_local_bucket_policy_is_the_templates_minus_tls_only() -> None:
    policy = fallback_bucket_policy("failover-did-fallback")
    assert policy["Statement"] == [
        {
            "Sid": "TwilioFetchesFallbackTwiml",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::failover-did-fallback/fallback/*",
        }
    ]
    assert "Fn::" not in json.dumps(policy)


def test_local_bucket_policy_without_the_template_policy() -> None:
    policy = fallback_bucket_policy("b-b-b", {"Resources": {}})
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::b-b-b/fallback/*"
