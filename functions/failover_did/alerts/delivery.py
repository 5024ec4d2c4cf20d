"""The one way a notice reaches people: a single SNS message to the NotifyTopic carrying an SMS text (one
GSM-7 segment) for sms subscriptions and a plain-text email for every other protocol. Alarm notices and
the notices about calls use it alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NOTIFY_TOPIC_ENV = "NOTIFY_TOPIC_ARN"
# Transactional SMS are delivered ahead of promotional ones and are not dropped for DND lists: these are pages.
SMS_TYPE = "Transactional"


@dataclass(frozen=True)
class Notice:
    """What people get: an SMS, an email subject and body. `about` names the kind of notice (an SNS message
    attribute, so a subscription can filter on it: "alarm", "not-an-alarm", later "missed-call")."""

    sms: str
    subject: str
    email: str
    about: str = "alarm"
    # More SNS message attributes (name, text) for subscription filter policies, e.g. ("number", "+1...").
    attributes: tuple[tuple[str, str], ...] = ()


_sns: Any = None


def sns_client(region: str | None = None) -> Any:
    """The SNS client, created on first use and then kept for the container's life."""
    global _sns
    if _sns is None:
        import boto3

        _sns = boto3.client("sns", region_name=region) if region else boto3.client("sns")
    return _sns


def publish(notice: Notice, topic_arn: str) -> str:
    """One SNS message with a text per protocol: the email body by default and for email, the SMS for sms.
    Raises when SNS refuses it, so that Lambda retries the invocation (and then dead-letters it)."""
    parts = topic_arn.split(":")
    response = sns_client(parts[3] if len(parts) > 5 and parts[3] else None).publish(
        TopicArn=topic_arn,
        Subject=notice.subject,
        Message=json.dumps({"default": notice.email, "email": notice.email, "sms": notice.sms}),
        MessageStructure="json",
        MessageAttributes={
            **{name: {"DataType": "String", "StringValue": value} for name, value in notice.attributes},
            "notice": {"DataType": "String", "StringValue": notice.about},
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": SMS_TYPE},
        },
    )
    return str(response["MessageId"])
