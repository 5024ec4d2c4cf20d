"""A console save keeps the missed-call recipients' SNS subscriptions in line as `rules apply` does (moto's
SNS): a recipient added in the form is subscribed, filtered on the number; removed, it is unsubscribed;
deleting the number unsubscribes it too. When SNS cannot be reached the rule is saved all the same and the
page says what to do. Without a fallback bucket the page says the static fallback was not republished."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from failover_did.settings import settings as service_settings
from failover_did.store.rules_store import get_stored
from tests.integration.console.conftest import Browser
from tests.integration.console.test_console_edit import NUMBER, PATH, open_form

OPS = "ops@example.com"


@pytest.fixture
def topic(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    arn: str = boto3.client("sns", region_name="us-east-1").create_topic(Name="failover-did-notify")["TopicArn"]
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", arn)
    service_settings.cache_clear()
    return arn


def subscriptions(topic: str) -> dict[tuple[str, str], Any]:
    sns = boto3.client("sns", region_name="us-east-1")
    found = {}
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
        found[(sub["Protocol"], sub["Endpoint"])] = json.loads(attributes.get("FilterPolicy") or "null")
    return found


def save(b: Browser, **changes: str) -> Any:
    fields = {**open_form(b), **changes, "action": "save"}
    saved = b.post(f"{PATH}/edit", fields)
    assert saved.status == 303, saved.body
    assert saved.location and saved.location.startswith(f"{PATH}?saved=1")
    return b.get(saved.location)


def notify_lines(page: Any) -> list[str]:
    listed = page.html.by_id("notify-changes")
    return [li.text for li in listed.all("li")] if listed is not None else []


def test_a_recipient_added_is_subscribed_on_the_number_and_removed_unsubscribed(admin: Browser, topic: str) -> None:
    shown = save(admin, notify_email=OPS)
    assert subscriptions(topic) == {("email", OPS): {"number": [NUMBER]}}
    assert any(OPS in line and "Subscribed" in line and "email" in line for line in notify_lines(shown))
    assert not [e for e in shown.html.all(class_="error") if "recipients" in e.text]

    again = save(admin)  # the same recipients: nothing to change, nothing to say
    assert subscriptions(topic) == {("email", OPS): {"number": [NUMBER]}}
    assert notify_lines(again) == []

    removed = save(admin, notify_email="")
    assert subscriptions(topic) == {}
    assert any(OPS in line and "Unsubscribed" in line for line in notify_lines(removed))


def test_deleting_the_number_unsubscribes_its_recipients(admin: Browser, topic: str) -> None:
    save(admin, notify_email=OPS, notify_sms="+14155550199")
    assert set(subscriptions(topic)) == {("email", OPS), ("sms", "+14155550199")}
    csrf = admin.csrf(PATH)
    gone = admin.post(f"{PATH}/delete", {"csrf": csrf, "confirm": "delete"})
    assert gone.status == 303 and gone.location
    assert subscriptions(topic) == {}
    lines = notify_lines(admin.get(gone.location))
    assert any(OPS in line and "Unsubscribed" in line for line in lines)
    assert any("+14155550199" in line and "Unsubscribed" in line for line in lines)


def test_a_failed_sync_keeps_the_rule_and_says_what_to_do(
    admin: Browser, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a topic that does not exist: SNS refuses every call, as it would without the grant
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    service_settings.cache_clear()
    shown = save(admin, notify_email=OPS)
    stored = get_stored(NUMBER)
    assert stored is not None and stored.rule.notify is not None and stored.rule.notify.email == (OPS,)
    errors = " ".join(e.text for e in shown.html.all(class_="error"))
    assert "missed-call recipients" in errors and "failover-did rules apply" in errors
    assert shown.html.by_id("status") is not None


def test_recipients_without_a_notify_topic_are_not_silently_dropped(
    admin: Browser, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_TOPIC_ARN", raising=False)
    service_settings.cache_clear()
    shown = save(admin, notify_email=OPS)
    errors = " ".join(e.text for e in shown.html.all(class_="error"))
    assert "NOTIFY_TOPIC_ARN" in errors


def test_a_save_without_a_fallback_bucket_says_the_fallback_was_not_republished(
    admin: Browser, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FALLBACK_BUCKET", raising=False)
    monkeypatch.delenv("FALLBACK_BASE_URL", raising=False)
    shown = save(admin, final_say="Sorry, nobody can take your call.")
    errors = " ".join(e.text for e in shown.html.all(class_="error"))
    assert "not republished" in errors and "FALLBACK_BUCKET" in errors


def test_a_save_with_a_fallback_bucket_says_nothing_about_it(
    admin: Browser, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = "failover-did-fallback"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    monkeypatch.setenv("FALLBACK_BUCKET", bucket)
    monkeypatch.setenv("FALLBACK_BASE_URL", f"https://{bucket}.s3.amazonaws.com/fallback/")
    shown = save(admin, final_say="Sorry, nobody can take your call.")
    assert not shown.html.all(class_="error")
