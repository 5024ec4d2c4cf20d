"""Missed-call notices under moto: what SNS delivers to whom (read back from SQS queues subscribed with the
same filter policies as the stack's default recipients and a number's own), and the digest window that
turns an outage into one notice per number per window, exactly once under retries and racing flushes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from failover_did.alerts import delivery
from failover_did.alerts.delivery import Notice
from failover_did.alerts.gsm import SMS_LIMIT, septets
from failover_did.call_record import CallOutcome, CallRecord, TierAttempt
from failover_did.notices import missed_call, window
from failover_did.notices.missed import flush
from failover_did.rules.validate import parse_rules_yaml
from failover_did.settings import settings
from failover_did.store import rules_store
from failover_did.store.tables import CallItem, EventItem, FailoverCount, HealthShard, RuleItem

REGION = "us-east-1"
OWN = "+14155550100"  # has its own recipients
PLAIN = "+14155550200"  # goes to the stack's default recipients
RULES = f"""
numbers:
  "{OWN}":
    primary: {{target: "sip:frontdesk@pbx.example.com", timeout: 15}}
    failover:
      - {{target: "+14155550111", timeout: 20}}
    final: {{voicemail: true, transcribe: true}}
    notify: {{email: [frontdesk@example.com], sms: ["+14155550123"]}}
  "{PLAIN}":
    primary: {{target: "sip:sales@pbx.example.com", timeout: 25}}
"""
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC0123/Recordings/RE0123"
T0 = datetime(2026, 11, 28, 10, 2, tzinfo=UTC)


def sms_of(message_id: str) -> str:
    """The SMS text of a published message (SQS subscribers get the email text; moto keeps the rest)."""
    for topic in sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics.values():
        for sent_id, message, *_ in topic.sent_notifications:
            if sent_id == message_id:
                return str(json.loads(message)["sms"])
    raise AssertionError(f"{message_id} was not published")


@dataclass
class Inbox:
    """An SQS queue subscribed to the NotifyTopic with a filter policy, standing in for a person."""

    sqs: Any
    url: str

    def read(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return got
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                got.append(
                    {
                        "subject": envelope["Subject"],
                        "email": envelope["Message"],
                        "sms": sms_of(envelope["MessageId"]),
                        "attributes": attributes,
                    }
                )
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Stack:
    topic_arn: str
    default: Inbox  # the AlertEmail/AlertPhone subscriptions' filter
    own: Inbox  # what `rules apply` subscribes for OWN's notify recipients
    sns: Any


@pytest.fixture
def stack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for model in (RuleItem, CallItem, HealthShard, EventItem, FailoverCount):
        monkeypatch.setattr(model, "_connection", None)
    monkeypatch.setattr(delivery, "_sns", None)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="notify")["TopicArn"]

    def inbox(name: str, policy: dict[str, Any]) -> Inbox:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": "MessageAttributes"},
        )
        return Inbox(sqs, url)

    default = inbox("default", {"audience": [{"exists": False}]})  # as template.yaml's default subscriptions
    own = inbox("own", {"number": [OWN]})  # as subscriptions.filter_policy([OWN])
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic_arn)
    settings.cache_clear()
    rules_store.apply_rules(parse_rules_yaml(RULES))
    yield Stack(topic_arn, default, own, sns)
    settings.cache_clear()


def record(
    number: str = OWN,
    sid: str = "CA1",
    caller: str = "+14155550199",
    outcome: CallOutcome = CallOutcome.VOICEMAIL,
    started: datetime = T0,
    **more: Any,
) -> CallRecord:
    base = CallRecord(
        call_sid=sid,
        number=number,
        caller=caller,
        started=started,
        ended=started + timedelta(seconds=80),
        outcome=outcome,
        tiers=(
            TierAttempt(1, 0, "sip:frontdesk@pbx.example.com", "busy", 486),
            TierAttempt(2, 1, "+14155550111", "no-answer"),
        ),
        recording_url=RECORDING if outcome is CallOutcome.VOICEMAIL else None,
        recording_seconds=42 if outcome is CallOutcome.VOICEMAIL else None,
    )
    return replace(base, **more)


def test_a_voicemail_reaches_the_numbers_own_recipients_with_the_link(stack: Stack) -> None:
    missed_call(record(transcript="Hi, it's Dana, please call me back."), T0 + timedelta(seconds=90))
    (got,) = stack.own.read()
    assert stack.default.read() == []  # the number has its own recipients: the defaults are spared
    assert got["attributes"] == {
        "number": OWN,
        "audience": "number",
        "notice": "missed-call",
        "AWS.SNS.SMS.SMSType": "Transactional",
    }
    assert got["sms"] == f"Missed call +1 415-555-0199 -> +1 415-555-0100 at 10:02Z: voicemail 0:42 {RECORDING}"
    assert septets(got["sms"]) <= SMS_LIMIT
    assert got["subject"] == "Missed call from +1 415-555-0199 to +1 415-555-0100"
    email = got["email"]
    for expected in (
        "Caller:   +1 415-555-0199 (call them back)",
        "- primary: sip:frontdesk@pbx.example.com: busy, SIP 486",
        "- tier 1: +1 415-555-0111: no-answer",
        "Voicemail: 0:42",
        f"Recording: {RECORDING}",
        "Hi, it's Dana, please call me back.",
        "Call SID: CA1",
    ):
        assert expected in email


def test_a_number_without_notify_goes_to_the_default_recipients_only(stack: Stack) -> None:
    missed_call(record(PLAIN, outcome=CallOutcome.CALLER_HUNG_UP, ring_seconds=35), T0)
    (got,) = stack.default.read()
    assert stack.own.read() == []
    assert got["attributes"]["number"] == PLAIN and "audience" not in got["attributes"]
    assert got["sms"] == "Missed call +1 415-555-0199 -> +1 415-555-0200 at 10:02Z: hung up after 35 s"
    assert "the caller hung up after 35 s of ringing before anyone answered" in got["email"]


def test_alarms_still_reach_the_default_recipients_and_not_a_numbers_own(stack: Stack) -> None:
    delivery.publish(Notice("failover-did: test alarm", "alarm", "body"), stack.topic_arn)
    assert [m["sms"] for m in stack.default.read()] == ["failover-did: test alarm"]
    assert stack.own.read() == []


def test_an_unreadable_rule_sends_to_both_rather_than_neither(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(number: str) -> None:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(rules_store, "load_rule", broken)
    missed_call(record(), T0)
    assert len(stack.own.read()) == 1 and len(stack.default.read()) == 1


def test_hidden_callers_are_shown_as_such(stack: Stack) -> None:
    missed_call(record(caller="anonymous", outcome=CallOutcome.FINAL), T0)
    (got,) = stack.own.read()
    assert got["sms"].startswith("Missed call hidden caller -> +1 415-555-0100 at 10:02Z: final message")
    assert "Caller:   hidden caller\n" in got["email"]


def test_answered_and_test_calls_are_never_noticed(stack: Stack) -> None:
    missed_call(record(outcome=CallOutcome.ANSWERED, answered_by="+14155550111"), T0)
    missed_call(record(sid="CA2", test=True), T0)
    assert stack.own.read() == [] and stack.default.read() == []


def test_a_long_recording_link_leaves_the_sms_one_segment_and_points_to_the_email(stack: Stack) -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/RE" + "1" * 32
    missed_call(record(caller="+442071838750", recording_url=url), T0)
    (got,) = stack.own.read()
    assert septets(got["sms"]) <= SMS_LIMIT
    assert got["sms"].endswith("voicemail 0:42 (link in email)")
    assert f"Recording: {url}" in got["email"]


# --- the digest window ----------------------------------------------------------------------------


def test_an_outage_sends_one_notice_then_one_digest_per_window(stack: Stack) -> None:
    missed_call(record(sid="CA1"), T0)
    for i in range(2, 9):  # seven more calls inside the window
        missed_call(record(sid=f"CA{i}", caller=f"+1415555030{i}", started=T0 + timedelta(seconds=20 * i)), T0)
    assert len(stack.own.read()) == 1  # only the first went out at once
    assert flush(T0 + timedelta(seconds=window.WINDOW_SECONDS - 1)) == []  # the window is still open
    assert flush(T0 + timedelta(seconds=window.WINDOW_SECONDS)) == [OWN]
    (digest,) = stack.own.read()
    assert digest["sms"].startswith("7 more missed calls to +1 415-555-0100 since 10:02Z; last +1 415-555-0308")
    assert septets(digest["sms"]) <= SMS_LIMIT
    assert digest["email"].count("\n- ") == 7 and "+1 415-555-0302" in digest["email"]
    assert flush(T0 + timedelta(seconds=window.WINDOW_SECONDS + 60)) == []  # sent once
    assert stack.own.read() == []


def test_a_retried_notice_of_one_call_is_dropped(stack: Stack) -> None:
    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA1"), T0 + timedelta(seconds=5))  # Twilio's retry reached us twice
    assert len(stack.own.read()) == 1
    assert flush(T0 + timedelta(minutes=10)) == []  # and it is not in a digest either


def test_a_call_after_a_closed_window_sends_the_overdue_digest_with_it(stack: Stack) -> None:
    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=60))
    stack.own.read()
    late = T0 + timedelta(seconds=window.WINDOW_SECONDS + 30)  # the flush has not run yet
    missed_call(record(sid="CA3", started=late), late)
    (digest,) = stack.own.read()
    assert digest["sms"].startswith("2 more missed calls to +1 415-555-0100")
    assert flush(late + timedelta(seconds=1)) == []


def test_a_quiet_window_closes_and_the_next_call_is_sent_at_once(stack: Stack) -> None:
    missed_call(record(sid="CA1"), T0)
    assert flush(T0 + timedelta(minutes=6)) == []  # nothing accumulated: no digest
    missed_call(record(sid="CA2"), T0 + timedelta(minutes=7))
    assert [m["sms"][:11] for m in stack.own.read()] == ["Missed call", "Missed call"]


def test_numbers_have_their_own_windows(stack: Stack) -> None:
    missed_call(record(OWN, sid="CA1"), T0)
    missed_call(record(PLAIN, sid="CA2"), T0)
    assert len(stack.own.read()) == 1 and len(stack.default.read()) == 1


def test_racing_flushes_send_the_digest_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two flush runs (a slow one and Lambda's next) both read the closed window before either claims it:
    the second run is played inside the first one's read, so the first one's claim meets a changed item."""
    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=30))
    stack.own.read()
    due = T0 + timedelta(minutes=6)
    real_read = window.read
    calls = {"n": 0}

    def read_then_let_the_other_run(number: str) -> window.Stored:
        stored = real_read(number)
        calls["n"] += 1
        if calls["n"] == 1:
            assert flush(due) == [OWN]  # the other run, start to end, between our read and our write
        return stored

    monkeypatch.setattr(window, "read", read_then_let_the_other_run)
    assert flush(due) == []  # lost the claim, re-read: nothing due any more
    assert len(stack.own.read()) == 1


def test_racing_calls_both_count(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two missed calls of one number read the open window at once: both end up in the digest."""
    missed_call(record(sid="CA1"), T0)
    stack.own.read()
    real_read = window.read
    calls = {"n": 0}

    def read_then_let_the_other_call_in(number: str) -> window.Stored:
        stored = real_read(number)
        calls["n"] += 1
        if calls["n"] == 1:
            missed_call(record(sid="CA3"), T0 + timedelta(seconds=61))
        return stored

    monkeypatch.setattr(window, "read", read_then_let_the_other_call_in)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=60))
    monkeypatch.setattr(window, "read", real_read)
    assert flush(T0 + timedelta(minutes=6)) == [OWN]
    (digest,) = stack.own.read()
    assert digest["sms"].startswith("2 more missed calls")


def test_a_refused_publish_keeps_the_call_for_the_digest(stack: Stack) -> None:
    def refused(notice: Notice, topic_arn: str) -> str:
        raise RuntimeError("SNS throttled")

    with pytest.raises(RuntimeError):
        missed_call(record(sid="CA1"), T0, publish=refused)
    assert stack.own.read() == []
    assert flush(T0 + timedelta(minutes=6)) == [OWN]
    (digest,) = stack.own.read()
    assert "1 more missed call to +1 415-555-0100" in digest["sms"]
    assert "+1 415-555-0199: voicemail 0:42" in digest["email"]


def test_a_refused_digest_is_sent_by_the_next_flush(stack: Stack) -> None:
    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=30))
    stack.own.read()
    failing: Callable[[Notice, str], str] = lambda notice, arn: (_ for _ in ()).throw(RuntimeError("down"))  # noqa: E731
    assert flush(T0 + timedelta(minutes=6), publish=failing) == []
    assert flush(T0 + timedelta(minutes=12)) == [OWN]
    (digest,) = stack.own.read()
    assert digest["sms"].startswith("1 more missed call to")


def test_without_a_window_table_every_call_is_still_noticed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(number: str) -> window.Stored:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(window, "read", down)
    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=10))
    assert len(stack.own.read()) == 2


# --- a transcript that arrives after the notice ----------------------------------------------------


def test_a_late_transcript_follows_the_calls_own_notice_once(stack: Stack) -> None:
    from failover_did.notices import voicemail_transcribed

    missed_call(record(sid="CA1"), T0)
    stack.own.read()
    done = record(sid="CA1", transcript="Hi, it's Dana, please call me back about the order.")
    voicemail_transcribed(done, T0 + timedelta(seconds=90))
    voicemail_transcribed(done, T0 + timedelta(seconds=95))  # Twilio retried the transcription callback
    (follow_up,) = stack.own.read()
    assert follow_up["sms"] == (
        'Voicemail +1 415-555-0199 -> +1 415-555-0100 at 10:02Z: "Hi, it\'s Dana, please call me back about the order."'
    )
    assert "Hi, it's Dana, please call me back about the order." in follow_up["email"]
    assert follow_up["attributes"]["number"] == OWN


def test_a_transcript_of_a_call_waiting_for_the_digest_goes_into_the_digest(stack: Stack) -> None:
    from failover_did.notices import voicemail_transcribed

    missed_call(record(sid="CA1"), T0)
    missed_call(record(sid="CA2"), T0 + timedelta(seconds=30))
    stack.own.read()
    voicemail_transcribed(record(sid="CA2", transcript="Second caller here."), T0 + timedelta(seconds=60))
    assert stack.own.read() == []  # no extra text during an outage
    flush(T0 + timedelta(minutes=6))
    (digest,) = stack.own.read()
    assert '"Second caller here."' in digest["email"]


def test_a_sender_dying_between_claim_and_publish_still_leaves_the_call_for_the_digest(stack: Stack) -> None:
    from failover_did.notices.wording import Missed

    decision = window.decide(OWN, Missed.of(record(sid="CA1")), T0)  # claimed; the Lambda dies here
    assert decision.action == "notify" and decision.claimed
    assert stack.own.read() == []
    assert flush(T0 + timedelta(minutes=6)) == [OWN]
    (digest,) = stack.own.read()
    assert "1 more missed call to +1 415-555-0100" in digest["sms"]
