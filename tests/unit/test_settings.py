"""Settings are read once and a bad value fails naming its variable."""

from __future__ import annotations

import pytest

from failover_did.settings import SettingError, Settings, dynamodb_timeout, load


def test_defaults_when_nothing_is_set() -> None:
    assert load({}) == Settings(account_sid=None, allow_private_targets=False, public_base_url="")


def test_numbers_are_parsed() -> None:
    got = load(
        {
            "EVENT_RETENTION_DAYS": "30",
            "HEALTH_DOWN_AFTER": "3",
            "HEALTH_UP_AFTER": "4",
            "PROBE_TIMEOUT_SECONDS": "1.5",
        }
    )
    assert (got.event_retention_days, got.health_down_after, got.health_up_after) == (30, 3, 4)
    assert got.probe_timeout_seconds == 1.5
    assert (load({}).event_retention_days, load({}).probe_timeout_seconds) == (90, 2.0)


def test_values_are_parsed() -> None:
    got = load(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
            "ALLOW_PRIVATE_TARGETS": "true",
            "PUBLIC_BASE_URL": "https://voice.example.com/prod/",
        }
    )
    assert got.account_sid == "AC" + "0123456789abcdef" * 2
    assert got.allow_private_targets is True
    assert got.public_base_url == "https://voice.example.com/prod"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TWILIO_ACCOUNT_SID", "ACnothex"),
        ("TWILIO_ACCOUNT_SID", "AC" + "0" * 31),
        ("ALLOW_PRIVATE_TARGETS", "maybe"),
        ("PUBLIC_BASE_URL", "voice.example.com"),
        ("NOTIFY_TOPIC_ARN", "failover-did-notify"),
        ("NOTIFY_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:queue"),
        ("EVENT_RETENTION_DAYS", "ninety"),
        ("EVENT_RETENTION_DAYS", "0"),
        ("HEALTH_DOWN_AFTER", "0"),
        ("HEALTH_UP_AFTER", "-1"),
        ("HEALTH_UP_AFTER", "2.5"),
        ("PROBE_TIMEOUT_SECONDS", "0"),
        ("PROBE_TIMEOUT_SECONDS", "11"),
        ("PROBE_TIMEOUT_SECONDS", "nan"),
        ("PROBE_TIMEOUT_SECONDS", "two"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=name):
        load({name: value})


def test_the_notify_topic_is_an_sns_arn() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:failover-did-NotifyTopic-1AB2"
    assert load({"NOTIFY_TOPIC_ARN": f" {arn} "}).notify_topic_arn == arn
    assert load({}).notify_topic_arn == ""


def test_the_dynamodb_timeout_is_checked_where_the_store_reads_it() -> None:
    assert dynamodb_timeout({}) == 0.5
    assert dynamodb_timeout({"DYNAMODB_TIMEOUT_SECONDS": "10"}) == 10.0
    for bad in ("0", "-1", "ten", "inf", "61"):
        with pytest.raises(SettingError, match="DYNAMODB_TIMEOUT_SECONDS"):
            dynamodb_timeout({"DYNAMODB_TIMEOUT_SECONDS": bad})
