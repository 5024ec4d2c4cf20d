"""The alert formatter Lambda, subscribed to the AlarmTopic: each CloudWatch alarm notification becomes one
notice in plain words on the NotifyTopic (SMS and email), sent once per condition while it lasts.

A message on the topic that is no alarm is logged (its beginning, folded onto one line) and notified by
its size only. Reading DynamoDB never stops a page; a failed publish raises, so that Lambda retries the
invocation and, after its retries, hands it to the dead-letter queue (template.yaml), whose alarm reaches
people without this function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from failover_did.alerts import dedupe, delivery
from failover_did.alerts.alarm import ALARM, NotAnAlarm, of_record, wants_notice
from failover_did.alerts.alarm_notice import compose, not_an_alarm
from failover_did.alerts.dedupe import AlertRecord
from failover_did.alerts.delivery import NOTIFY_TOPIC_ENV
from failover_did.alerts.situation import read_situation
from failover_did.alerts.wording import one_line
from failover_did.observability import logger

NOT_AN_ALARM_KEY = "#not-an-alarm"  # the dedupe record of those notices (no alarm name starts with "#" here)
LOGGED_PREVIEW = 200  # characters of a non-alarm message kept in the log


def handle(record: Mapping[str, Any], topic_arn: str, now: datetime) -> dict[str, Any]:
    """One SNS record: read, word, decide, publish, remember. Returns what was done (for the logs)."""
    arrived = of_record(record)
    if isinstance(arrived, NotAnAlarm):
        return _not_an_alarm(record, arrived, topic_arn, now)
    alarm = arrived
    result: dict[str, Any] = {"alarm": alarm.name, "state": alarm.state, "kind": alarm.kind.name}
    if not wants_notice(alarm):
        return {**result, "action": "ignored"}
    notice = compose(alarm, read_situation(alarm, now))

    def decide(prior: AlertRecord | None, known: bool) -> bool:
        return dedupe.should_publish(alarm, notice.condition, prior, known)

    message_id = dedupe.send_once(
        alarm.name, alarm.state, notice.condition, decide, lambda: delivery.publish(notice, topic_arn), now
    )
    if message_id is None:
        logger.info("alert not sent again", extra={**result, "condition": notice.condition})
        return {**result, "action": "repeat"}
    logger.info("alert sent", extra={**result, "sms": notice.sms, "message_id": message_id})
    return {**result, "action": "published", "message_id": message_id, "sms": notice.sms}


def _not_an_alarm(record: Mapping[str, Any], message: NotAnAlarm, topic_arn: str, now: datetime) -> dict[str, Any]:
    sns = record.get("Sns") if isinstance(record, Mapping) else None
    sns = sns if isinstance(sns, Mapping) else {}
    logger.warning(
        "not a CloudWatch alarm",
        extra={
            "size": message.size,
            "sns_message_id": message.message_id or one_line(sns.get("MessageId"), 64),
            "subject": one_line(sns.get("Subject"), 100),
            "beginning": one_line(sns.get("Message"), LOGGED_PREVIEW),
        },
    )
    result: dict[str, Any] = {"alarm": NOT_AN_ALARM_KEY, "state": ALARM, "kind": "NOT_AN_ALARM"}
    notice = not_an_alarm(message, now)

    def decide(prior: AlertRecord | None, known: bool) -> bool:
        return not (known and prior is not None and prior.condition == notice.condition)

    message_id = dedupe.send_once(
        NOT_AN_ALARM_KEY, ALARM, notice.condition, decide, lambda: delivery.publish(notice, topic_arn), now
    )
    if message_id is None:
        return {**result, "action": "repeat"}
    return {**result, "action": "published", "message_id": message_id, "sms": notice.sms}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """The Lambda subscribed to AlarmTopic."""
    topic_arn = os.environ[NOTIFY_TOPIC_ENV]
    now = datetime.now(UTC)
    records = event.get("Records") if isinstance(event, Mapping) else None
    return {"results": [handle(record, topic_arn, now) for record in (records if isinstance(records, list) else [])]}
