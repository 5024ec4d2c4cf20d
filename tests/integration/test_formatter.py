"""The alert formatter's handler under moto: recorded CloudWatch notifications in, one SNS message per alarm
out (read back from an SQS queue subscribed to the NotifyTopic, and from moto's record of what was published);
the same condition is paged once while it lasts; a DynamoDB failure still pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from failover_did.alerts import dedupe, delivery, formatter
from failover_did.alerts.dedupe import ALERTS_PARTITION
from failover_did.rules.validate import parse_rules_yaml
from failover_did.store import events, failovers, health_store, rules_store
from failover_did.store.tables import CallItem, EventItem, FailoverCount, HealthShard, RuleItem
from failover_did_cli.apigw import LambdaContext

ALARMS = Path(__file__).resolve().parents[1] / "data" / "alarms"
REGION = "us-east-1"
PBX = "sip:frontdesk@pbx.example.com"
DR = "sip:oncall@dr.example.net"
RULES_YAML = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sip:oncall@dr.example.net", screen: true}
    triggers: [timeout, busy, failed, "503"]
    monthly_failover_budget: 2
  "+14155550200":
    primary: {target: "sip:sales@pbx.example.com", timeout: 25}
    failover:
      - {target: "+14155550222"}
"""
UNREACHABLE_SMS = (
    "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx unreachable (503) since 10:02Z; "
    "calls go to +1 415-555-0111"
)


def at(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-28T{hhmmss}+00:00")


def notification(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ALARMS / f"{name}.json").read_text())
    return loaded


@dataclass
class Sent:
    subject: str
    sms: str
    email: str
    delivered: str  # what the SQS subscriber got: the "default" text, as SNS picks it for that protocol


class Notify:
    """The NotifyTopic with an SQS queue subscribed to it."""

    def __init__(self) -> None:
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn: str = self.sns.create_topic(Name="failover-did-NotifyTopic-1X2Y3Z")["TopicArn"]
        self.queue_url: str = self.sqs.create_queue(QueueName="notify-readback")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        self._seen = 0

    def sent(self) -> list[Sent]:
        """Everything published since the last call."""
        delivered: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not got.get("Messages"):
                break
            for message in got["Messages"]:
                delivered.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[self.topic_arn]
        published = topic.sent_notifications[self._seen :]
        self._seen = len(topic.sent_notifications)
        assert len(published) == len(delivered)
        result = []
        for (_, message, subject, _, _), envelope in zip(published, delivered, strict=True):
            structure = json.loads(message)
            assert set(structure) == {"default", "email", "sms"}
            assert structure["default"] == structure["email"]
            assert envelope["Subject"] == subject
            result.append(Sent(str(subject), structure["sms"], structure["email"], envelope["Message"]))
        return result


@pytest.fixture
def notify(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Notify]:
    # The models and the formatter cache their clients; make them open fresh ones inside this mock.
    for model in (RuleItem, CallItem, HealthShard, EventItem, FailoverCount):
        monkeypatch.setattr(model, "_connection", None)
    monkeypatch.setattr(delivery, "_sns", None)
    topic = Notify()
    monkeypatch.setenv(delivery.NOTIFY_TOPIC_ENV, topic.topic_arn)
    rules_store.apply_rules(parse_rules_yaml(RULES_YAML))
    yield topic


def invoke(name: str) -> dict[str, Any]:
    result: dict[str, Any] = formatter.handler(notification(name), LambdaContext())
    return result


def pbx_down() -> None:
    """The PBX, reached before, fails two checks in a row (the default hysteresis): down since 10:02."""
    health_store.record_check(PBX, "up", "200", at("10:00:00"))
    health_store.record_check(PBX, "down", "503", at("10:01:00"))
    health_store.record_check(PBX, "down", "503", at("10:02:00"))
    health_store.mark_run(at("09:58:00"), 3)
    detail = {"target": PBX, "tier": 0, "tier_name": "primary", "state": "down", "reason": "503"}
    events.record("+14155550100", "unreachable", at("10:02:00"), detail, f"unreachable#{PBX}")


def three_failovers() -> None:
    for when, sid, reason in (("10:02:11", "CA1", "timeout"), ("10:05:02", "CA2", "busy"), ("10:07:40", "CA3", "busy")):
        detail = {"call_sid": sid, "from_tier": 0, "to_tier": 1, "to_target": "+14155550111", "reason": reason}
        events.record("+14155550100", "failover", at(when), detail, f"failover#{sid}")
    FailoverCount("+14155550100", failovers.month_key(at("10:07:40")), failovers=3).save()


def alert_record(alarm_name: str) -> dict[str, Any]:
    (item,) = EventItem.query(ALERTS_PARTITION, EventItem.sk == alarm_name)
    assert item.kind == "alert"
    return dict(item.detail)


# --- each alarm, with what DynamoDB holds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "sms", "subject"),
    [
        (
            "destination_unreachable_alarm",
            UNREACHABLE_SMS,
            "failover-did ALARM: destination unreachable on +1 415-555-0100",
        ),
        (
            "failover_alarm",
            "failover-did: failover active on +1 415-555-0100 - 3 calls since 10:02Z went to +1 415-555-0111 (busy)",
            "failover-did ALARM: failover active on +1 415-555-0100",
        ),
        (
            "webhook_errors_alarm",
            "failover-did: webhook errors - the voice function failed 4 times in 5 min; "
            "callers may get Twilio's fallback or an error",
            "failover-did ALARM: webhook errors",
        ),
        (
            "api_5xx_alarm",
            "failover-did: API 5xx - the voice API answered 6 requests with 5xx in 5 min; "
            "Twilio falls back for those calls",
            "failover-did ALARM: API 5xx",
        ),
        (
            "signatures_alarm",
            "failover-did: signatures refused (someone is probing the endpoint) - 37 webhooks refused in 5 min; "
            "nothing was dialed for them",
            "failover-did ALARM: signatures refused",
        ),
        (
            "budget_alarm",
            "failover-did: failover budget exceeded on +1 415-555-0100 - 3 failovers this month (budget 2); "
            "carriers may charge a dual-billing fee",
            "failover-did ALARM: failover budget exceeded on +1 415-555-0100",
        ),
        (
            "health_checker_alarm",
            "failover-did: health checker not running - last run 09:58Z; down destinations are not skipped",
            "failover-did ALARM: health checker not running",
        ),
        (
            "health_checker_insufficient",
            "failover-did: health checker not running - last run 09:58Z; down destinations are not skipped",
            "failover-did no data: health checker not running",
        ),
        (
            "unknown_alarm",
            "failover-did: failover-did-RulesTableThrottles is in ALARM - "
            "Reads of the rules table are being throttled.",
            "failover-did ALARM: failover-did-RulesTableThrottles",
        ),
    ],
)
def test_each_alarm_is_published_once_as_sms_and_email(notify: Notify, fixture: str, sms: str, subject: str) -> None:
    pbx_down()
    three_failovers()
    result = invoke(fixture)
    assert [r["action"] for r in result["results"]] == ["published"]
    (sent,) = notify.sent()
    assert sent.sms == sms
    assert sent.subject == subject
    assert sent.email.startswith(sms.replace("sip:frontdesk@pbx ", f"{PBX} ") + "\n\n")
    assert sent.delivered == sent.email  # MessageStructure=json: the SQS subscriber got the default text
    # every email carries the recent events, the down destinations and advice
    assert "Recent events (last 60 min, newest first):" in sent.email
    assert "  10:07Z  +1 415-555-0100  failover     primary -> tier 1 +1 415-555-0111 (busy), call CA3" in sent.email
    assert "  10:02Z  +1 415-555-0100  unreachable  primary sip:frontdesk@pbx.example.com: 503" in sent.email
    assert "Down destinations now (1):" in sent.email
    assert "    primary of +1 415-555-0100 - calls go to +1 415-555-0111 (tier 1)" in sent.email
    assert "What to check:" in sent.email
    assert "Could not read" not in sent.email
    name = json.loads(notification(fixture)["Records"][0]["Sns"]["Message"])["AlarmName"]
    assert alert_record(name)["state"] in ("ALARM", "INSUFFICIENT_DATA")


def test_an_unverified_destination_is_named_with_the_numbers_and_tiers_it_serves_and_the_advice(
    notify: Notify,
) -> None:
    # The PBX admits SIP only from the carrier: the prober has never reached it. The DR box answers probes.
    told = health_store.record_check(PBX, "down", "timeout", at("10:00:00"))
    assert told is not None and told.kind == "unverified"
    health_store.record_check(DR, "up", "200", at("10:00:00"))
    health_store.mark_run(at("10:00:30"), 2)
    assert [r["action"] for r in invoke("destination_unverified_alarm")["results"]] == ["published"]
    (sent,) = notify.sent()
    assert sent.sms == (
        "failover-did: the prober cannot reach sip:frontdesk@pbx (+1 415-555-0100 primary); calls still go there. "
        "Allow the probe's source or set health:/probe: false"
    )
    assert sent.subject == "failover-did ALARM: destination unverified on +1 415-555-0100"
    assert (
        "Destinations the prober cannot reach (1); calls still go to each of them:\n"
        "  sip:frontdesk@pbx.example.com: never reached since 2026-11-28 10:00Z; last probe: timeout at 10:00Z\n"
        "    primary of +1 415-555-0100\n"
    ) in sent.email
    assert "dr.example.net" not in sent.email  # reached by the prober: not unverified
    advice = sent.email.split("What to check:\n", 1)[1]
    assert "allow the probe's source address" in advice and "`health:` URL" in advice and "`probe: false`" in advice
    assert "Could not read" not in sent.email
    # The alarm clears once no new target is told, not because the PBX became reachable: the OK says so.
    assert [r["action"] for r in invoke("destination_unverified_ok")["results"]] == ["published"]
    (ok,) = notify.sent()
    assert (
        ok.sms
        == "failover-did: resolved - no new unverified destination; 1 destination still not reached by the prober"
    )


def test_the_alert_record_does_not_show_up_among_the_events(notify: Notify) -> None:
    pbx_down()
    invoke("destination_unreachable_alarm")
    invoke("webhook_errors_alarm")
    notify.sent()
    assert [e.kind for e in events.all_events(at("09:00:00"))] == ["unreachable"]
    invoke("failover_alarm")
    (sent,) = notify.sent()
    assert "condition=" not in sent.email and "#alerts" not in sent.email
    assert "Recent events (last 60 min, newest first):\n  time    number           kind         details\n" in sent.email


# --- paging once per condition --------------------------------------------------------------------------


def test_the_same_alarm_twice_publishes_once_then_ok_and_alarm_again_publish(notify: Notify) -> None:
    pbx_down()
    name = "failover-did-DestinationUnreachableAlarm-1Q2W3E4R5T6Y"
    assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "published"
    assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "repeat"  # a re-deploy, a flap
    assert [s.sms for s in notify.sent()] == [UNREACHABLE_SMS]
    record = alert_record(name)
    assert (record["state"], record["condition"]) == ("ALARM", PBX)

    health_store.record_check(PBX, "up", "200", at("10:19:00"))
    health_store.record_check(PBX, "up", "200", at("10:20:00"))
    detail = {"target": PBX, "tier": 0, "tier_name": "primary", "state": "up", "reason": "200"}
    events.record("+14155550100", "recovered", at("10:20:00"), detail, f"recovered#{PBX}")
    invoke("destination_unreachable_ok")
    invoke("destination_unreachable_ok")  # a repeated resolution says nothing new
    (resolved,) = notify.sent()
    assert resolved.sms == (
        "failover-did: recovered - +1 415-555-0100 primary sip:frontdesk@pbx reachable again since 10:20Z"
    )
    assert resolved.subject == "failover-did resolved: destination unreachable"
    assert "Down destinations: none." in resolved.email and "What to check" not in resolved.email
    assert alert_record(name)["state"] == "OK"

    pbx_down_again = [("10:40:00", "503"), ("10:41:00", "503")]
    for when, reason in pbx_down_again:
        health_store.record_check(PBX, "down", reason, at(when))
    invoke("destination_unreachable_alarm")
    (again,) = notify.sent()
    assert again.sms == (
        "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx unreachable (503) since 10:41Z; "
        "calls go to +1 415-555-0111"
    )


def test_a_different_condition_under_the_same_alarm_is_news(notify: Notify) -> None:
    pbx_down()
    invoke("destination_unreachable_alarm")
    health_store.record_check(DR, "up", "200", at("10:02:00"))
    health_store.record_check(DR, "down", "timeout", at("10:03:00"))
    health_store.record_check(DR, "down", "timeout", at("10:04:00"))
    invoke("destination_unreachable_alarm")
    assert [s.sms for s in notify.sent()] == [UNREACHABLE_SMS, UNREACHABLE_SMS[:-1] + "1; +1 more"]


def test_insufficient_data_publishes_nothing_except_for_the_health_checker(notify: Notify) -> None:
    assert invoke("destination_unreachable_insufficient")["results"][0]["action"] == "ignored"
    assert notify.sent() == []
    assert list(EventItem.query(ALERTS_PARTITION)) == []
    invoke("health_checker_insufficient")
    invoke("health_checker_alarm")  # the same condition, now as ALARM: not paged twice
    (sent,) = notify.sent()
    assert sent.sms == "failover-did: health checker not running - no run recorded; down destinations are not skipped"
    invoke("health_checker_ok")
    (ok,) = notify.sent()
    assert ok.sms == "failover-did: recovered - the health checker is running again"


def test_a_first_ok_of_a_new_alarm_is_not_news(notify: Notify) -> None:
    first = notification("webhook_errors_ok")
    message = json.loads(first["Records"][0]["Sns"]["Message"])
    message["OldStateValue"] = "INSUFFICIENT_DATA"  # what a freshly created alarm reports on its first evaluation
    first["Records"][0]["Sns"]["Message"] = json.dumps(message)
    assert formatter.handler(first, LambdaContext())["results"][0]["action"] == "repeat"
    assert notify.sent() == []
    assert invoke("webhook_errors_ok")["results"][0]["action"] == "published"  # ALARM -> OK with no record


# --- storage failures never stop a page ------------------------------------------------------------------


def test_a_dynamodb_failure_still_publishes_a_less_detailed_message(notify: Notify, aws: Any) -> None:
    pbx_down()
    invoke("destination_unreachable_alarm")
    notify.sent()
    for table in ("failover-did-health", "failover-did-rules", "failover-did-events"):
        aws.delete_table(TableName=table)
    for _ in range(2):  # the record cannot be read: every notification is sent
        assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "published"
    sent = notify.sent()
    assert [s.sms for s in sent] == ["failover-did: 1 destination unreachable since 10:03Z"] * 2
    assert "Could not read health, rules, events from DynamoDB" in sent[0].email
    assert "What to check:" in sent[0].email


def test_one_unreadable_table_leaves_out_only_its_part(notify: Notify, aws: Any) -> None:
    pbx_down()
    three_failovers()
    aws.delete_table(TableName="failover-did-health")
    invoke("failover_alarm")
    (sent,) = notify.sent()
    assert sent.sms.startswith("failover-did: failover active on +1 415-555-0100 - 3 calls")
    assert "Down destinations: unknown (the health table could not be read)." in sent.email
    assert "call CA3" in sent.email


def test_a_failed_publish_raises_so_lambda_retries_and_nothing_is_recorded(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    pbx_down()
    monkeypatch.setenv(delivery.NOTIFY_TOPIC_ENV, notify.topic_arn + "-gone")
    with pytest.raises(Exception, match=r"(?i)not ?found|does not exist"):
        invoke("destination_unreachable_alarm")
    # the claim was given back: a record of nothing said (the formatter may put items, not delete them)
    assert [dict(item.detail)["state"] for item in EventItem.query(ALERTS_PARTITION)] == [""]
    monkeypatch.setenv(delivery.NOTIFY_TOPIC_ENV, notify.topic_arn)
    invoke("destination_unreachable_alarm")  # the retry pages
    assert [s.sms for s in notify.sent()] == [UNREACHABLE_SMS]


# --- what arrives is not always an alarm -------------------------------------------------------------------


def sns_record(text: str, subject: str = "TestInvoke") -> dict[str, Any]:
    return {
        "Sns": {
            "MessageId": "3f1c2b9e-0d4a-4f5e-9a7b-2c8d6e1f0a3b",
            "Subject": subject,
            "Message": text,
            "Timestamp": "2026-11-28T10:00:00Z",
        }
    }


def test_a_message_that_is_not_an_alarm_is_noticed_by_size_logged_and_not_relayed(
    notify: Notify, caplog: pytest.LogCaptureFixture
) -> None:
    text = "Your service is suspended.\nCall +1 900 555 0199 now."
    result = formatter.handler({"Records": [sns_record(text, "URGENT")]}, LambdaContext())
    assert result["results"][0]["action"] == "published"
    (sent,) = notify.sent()
    assert sent.sms == (
        "failover-did: a message that is not a CloudWatch alarm arrived on the alarm topic (52 bytes); see the log"
    )
    assert sent.subject == "failover-did notice: a message that is not an alarm arrived"
    assert "suspended" not in sent.email and "900" not in sent.email and "URGENT" not in sent.email
    assert '"3f1c2b9e-0d4a-4f5e-9a7b-2c8d6e1f0a3b"' in sent.email
    logged = [r.__dict__ for r in caplog.records if r.getMessage() == "not a CloudWatch alarm"]
    assert [(r["size"], r["subject"], r["beginning"]) for r in logged] == [
        (52, "URGENT", "Your service is suspended. Call +1 900 555 0199 now.")
    ]
    # A flood is logged every time and notified once an hour.
    formatter.handler({"Records": [sns_record("again")] * 3}, LambdaContext())
    assert notify.sent() == []
    assert len([r for r in caplog.records if r.getMessage() == "not a CloudWatch alarm"]) == 4


def test_malformed_numbers_in_an_alarm_still_page(notify: Notify) -> None:
    record = notification("webhook_errors_alarm")
    text = record["Records"][0]["Sns"]["Message"]
    text = text.replace('"Period":300', '"Period":"soon"').replace('"Threshold":1.0', '"Threshold":1e400')
    record["Records"][0]["Sns"]["Message"] = text.replace("[4.0 (", "[" + "9" * 5000 + " (")
    assert formatter.handler(record, LambdaContext())["results"][0]["action"] == "published"
    (sent,) = notify.sent()
    assert sent.sms == (
        "failover-did: webhook errors - the voice function is failing; callers may get Twilio's fallback or an error"
    )


def test_garbage_events_do_not_raise(notify: Notify) -> None:
    for event in ({}, {"Records": None}, {"Records": "x"}, {"Records": [None, 5, {"Sns": None}]}):
        formatter.handler(event, LambdaContext())
    assert [s.subject for s in notify.sent()] == ["failover-did notice: a message that is not an alarm arrived"]


def test_notices_carry_their_kind_and_ask_for_transactional_sms(notify: Notify) -> None:
    pbx_down()
    invoke("destination_unreachable_alarm")
    topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[notify.topic_arn]
    (_, _, _, attributes, _) = topic.sent_notifications[-1]
    assert attributes["notice"] == {"Type": "String", "Value": "alarm"}
    assert attributes["AWS.SNS.SMS.SMSType"] == {"Type": "String", "Value": "Transactional"}


# --- two deliveries of one alarm at once page once ------------------------------------------------------------


def test_two_deliveries_racing_page_exactly_once(notify: Notify, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delivery A reads the record (nothing said yet); before it writes, delivery B runs to its end; then A
    goes on with what it read. Without the conditional claim both would page."""
    pbx_down()
    real_read = dedupe.read
    interleaved: list[dict[str, Any]] = []
    reads = 0

    def read_then_let_b_run(key: str, now: datetime) -> dedupe.Stored:
        nonlocal reads
        reads += 1
        stored = real_read(key, now)
        if reads == 1:
            interleaved.append(invoke("destination_unreachable_alarm"))  # B, whole, inside A's window
        return stored

    monkeypatch.setattr(dedupe, "read", read_then_let_b_run)
    a = invoke("destination_unreachable_alarm")
    assert [r["action"] for r in interleaved[0]["results"]] == ["published"]  # B
    assert [r["action"] for r in a["results"]] == ["repeat"]  # A lost the claim, re-read, saw B's page
    assert [s.sms for s in notify.sent()] == [UNREACHABLE_SMS]
    record = alert_record("failover-did-DestinationUnreachableAlarm-1Q2W3E4R5T6Y")
    assert (record["state"], record["condition"], record["pending"]) == ("ALARM", PBX, False)


def test_a_delivery_in_flight_keeps_a_duplicate_quiet_and_a_dead_one_does_not(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's claim is made and its publish is still under way when B arrives: B stays quiet. A claim left
    pending past CLAIM_SECONDS (its Lambda died mid-send) counts as nothing said: the next delivery pages."""
    pbx_down()
    real_publish = delivery.publish
    during: list[dict[str, Any]] = []
    publishes = 0

    def publish_with_b_arriving(notice: delivery.Notice, topic_arn: str) -> str:
        nonlocal publishes
        publishes += 1
        if publishes == 1:
            during.append(invoke("destination_unreachable_alarm"))
        return real_publish(notice, topic_arn)

    monkeypatch.setattr(delivery, "publish", publish_with_b_arriving)
    assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "published"
    assert during[0]["results"][0]["action"] == "repeat"
    assert len(notify.sent()) == 1

    name = "failover-did-DestinationUnreachableAlarm-1Q2W3E4R5T6Y"
    (item,) = EventItem.query(ALERTS_PARTITION, EventItem.sk == name)
    abandoned = datetime.now(UTC) - timedelta(seconds=dedupe.CLAIM_SECONDS + 1)
    item.detail = {**item.detail, "pending": True, "at": events.iso(abandoned)}
    item.save()
    assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "published"
    assert len(notify.sent()) == 1
    fresh = datetime.now(UTC) - timedelta(seconds=5)
    (item,) = EventItem.query(ALERTS_PARTITION, EventItem.sk == name)
    item.detail = {**item.detail, "pending": True, "at": events.iso(fresh)}
    item.save()
    assert invoke("destination_unreachable_alarm")["results"][0]["action"] == "repeat"


def test_a_failed_publish_gives_back_a_claim_over_an_earlier_record(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    pbx_down()
    invoke("webhook_errors_alarm")
    invoke("webhook_errors_ok")
    assert len(notify.sent()) == 2
    name = json.loads(notification("webhook_errors_alarm")["Records"][0]["Sns"]["Message"])["AlarmName"]
    before = alert_record(name)
    monkeypatch.setenv(delivery.NOTIFY_TOPIC_ENV, notify.topic_arn + "-gone")
    with pytest.raises(Exception, match=r"(?i)not ?found|does not exist"):
        invoke("webhook_errors_alarm")
    assert alert_record(name) == before  # the OK record as it was, not a claim
    monkeypatch.setenv(delivery.NOTIFY_TOPIC_ENV, notify.topic_arn)
    assert invoke("webhook_errors_alarm")["results"][0]["action"] == "published"
