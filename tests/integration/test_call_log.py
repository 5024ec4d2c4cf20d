"""The call log through the real path: whole calls as Twilio makes them (signed requests into the Lambda
handler, DynamoDB under moto), retried callbacks, the missed-call notice sent once per missed call."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from failover_did.call_record import CallOutcome, CallRecord, TierAttempt
from failover_did.store import call_log
from failover_did_cli.callsim import parse_reply
from tests.support import Webhook, call_params

NUMBER = "+14155550100"  # primary sip:frontdesk, then +14155550111, then sip:oncall (screened); voicemail
OTHER = "+14155550200"  # primary sip:sales, then +14155550222; final without voicemail
SID = "CA" + "a" * 32
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/RE" + "b" * 32
RECORDING_SID = "RE" + "b" * 32


@pytest.fixture
def notices(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[CallRecord]]:
    """Stands in for failover_did.notices: records each missed_call it is asked to send."""
    sent: list[CallRecord] = []
    module = types.ModuleType("failover_did.notices")

    def missed_call(record: CallRecord, now: datetime) -> None:
        sent.append(record)

    module.missed_call = missed_call  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "failover_did.notices", module)
    call_log.log_breaker.reset()
    yield sent
    call_log.log_breaker.reset()


class Call:
    """One inbound call, step by step, as Twilio posts it."""

    def __init__(self, webhook: Webhook, number: str = NUMBER, sid: str = SID, query: str = "") -> None:
        self.webhook, self.number, self.sid, self.query = webhook, number, sid, query
        self.answers: list[str] = []

    def params(self, **extra: str) -> dict[str, str]:
        return call_params(self.sid, self.number, **extra)

    def post(self, path: str, params: dict[str, str], query: str = "") -> str:
        full = "&".join(q for q in (query, self.query) if q)
        result = self.webhook.post(path, params, full)
        assert result.status == 200, result.body
        self.answers.append(result.body)
        return result.body

    def start(self) -> str:
        return self.post("/voice", self.params())

    def dial_ended(self, tier: int, hop: int, status: str, *, caller_gone: bool = False, **extra: str) -> str:
        fields = {
            "CallStatus": "completed" if caller_gone else "in-progress",
            "DialCallStatus": status,
            "DialCallSid": "CA" + "d" * 32,
            "DialCallDuration": "0",
        }
        params = self.params(**{**fields, **extra})
        # As Twilio does: the action URL of the <Dial> of this tier and hop (a retry posts it again).
        actions = [urlsplit(d.action).query for a in self.answers if (d := parse_reply(200, a).dial) is not None]
        query = next(q for q in reversed(actions) if q.startswith(f"tier={tier}&hop={hop}&start="))
        return self.post("/voice/action", params, query.removesuffix("&test=1"))

    def voicemail(self, seconds: int) -> str:
        params = self.params(CallStatus="in-progress", RecordingUrl=RECORDING_URL, RecordingDuration=str(seconds))
        return self.post("/voice/voicemail", params)

    def ended(self, seconds: int, status: str = "completed") -> str:
        return self.post("/voice/status", self.params(CallStatus=status, CallDuration=str(seconds)))

    def recording(self, seconds: int, status: str = "completed") -> str:
        # The recording callback carries no To/From: only the call and the recording.
        params = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": self.sid,
            "RecordingSid": RECORDING_SID,
            "RecordingUrl": RECORDING_URL,
            "RecordingStatus": status,
            "RecordingDuration": str(seconds) if status == "completed" else "-1",
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
        }
        return self.post("/voice/recording", params)

    @property
    def record(self) -> CallRecord:
        found = call_log.get(self.sid)
        assert found is not None
        return found


def log_items(aws: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.scan(TableName="failover-did-call-log")["Items"]
    return items


def busy_cascade_to_voicemail(call: Call) -> None:
    call.start()
    call.dial_ended(0, 1, "busy", DialSipResponseCode="486")
    call.dial_ended(1, 2, "busy")
    answer = call.dial_ended(2, 3, "no-answer")
    assert "<Record" in answer and "recordingStatusCallback=" in answer


def test_busy_cascade_into_voicemail_is_logged_and_noticed_once(
    webhook: Webhook, notices: list[CallRecord], aws: Any
) -> None:
    call = Call(webhook)
    busy_cascade_to_voicemail(call)
    call.voicemail(23)
    assert notices == []  # the call has not ended yet
    call.ended(95)
    call.recording(23)

    record = call.record
    assert record.outcome is CallOutcome.VOICEMAIL and record.missed
    assert (record.number, record.caller) == (NUMBER, "+14155550999")
    assert record.tiers == (
        TierAttempt(1, 0, "sip:frontdesk@pbx.example.com", "busy", 486),
        TierAttempt(2, 1, "+14155550111", "busy"),
        TierAttempt(3, 2, "sip:oncall@dr.example.net", "no-answer"),
    )
    assert (record.recording_url, record.recording_seconds) == (RECORDING_URL, 23)
    assert record.answered_by is None and record.ended is not None and record.ring_seconds is not None
    started = int(urlsplit(parse_reply(200, call.answers[0]).dial.action).query.split("start=")[1])  # type: ignore[union-attr]
    assert int(record.started.timestamp()) == started  # the call began at /voice, not at the first action
    assert [n.call_sid for n in notices] == [SID]
    assert notices[0].recording_url == RECORDING_URL  # the notice carries the link
    assert len(log_items(aws)) == 1


def test_recording_after_the_status_callback_still_reaches_the_notice(
    webhook: Webhook, notices: list[CallRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller hung up while recording: the status callback comes first and waits; the recording
    callback, landing during the wait, closes the call with its link."""
    call = Call(webhook)
    busy_cascade_to_voicemail(call)
    waits: list[float] = []

    def recording_lands(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            call.recording(31)  # Twilio's recording callback, while the status callback waits

    monkeypatch.setattr(call_log, "pause", recording_lands)
    call.ended(120)
    assert len(waits) == 2
    assert [(n.outcome, n.recording_url, n.recording_seconds) for n in notices] == [
        (CallOutcome.VOICEMAIL, RECORDING_URL, 31)
    ]


def test_no_recording_within_the_grace_is_a_final_message_then_the_late_link_is_logged(
    webhook: Webhook, notices: list[CallRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(call_log, "RECORDING_GRACE_SECONDS", 0.0)
    call = Call(webhook)
    busy_cascade_to_voicemail(call)
    call.ended(100)
    assert [n.outcome for n in notices] == [CallOutcome.FINAL]
    call.recording(12)  # late: the log gets the link, nobody is noticed twice
    assert (call.record.recording_url, call.record.recording_seconds) == (RECORDING_URL, 12)
    assert len(notices) == 1


def test_recording_absent_closes_as_final_message(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook)
    busy_cascade_to_voicemail(call)
    call.recording(0, status="absent")
    assert notices == []  # the call has not ended
    call.ended(70)
    assert [(n.outcome, n.recording_url) for n in notices] == [(CallOutcome.FINAL, None)]


def test_caller_hanging_up_while_a_tier_rings(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook)
    call.start()
    call.dial_ended(0, 1, "busy")
    assert "+14155550111" in call.answers[-1]
    assert "<Hangup" in call.dial_ended(1, 2, "no-answer", caller_gone=True)
    call.ended(41, status="completed")

    record = call.record
    assert record.outcome is CallOutcome.CALLER_HUNG_UP and record.ring_seconds == 41
    assert [(t.hop, t.target, t.outcome) for t in record.tiers] == [
        (1, "sip:frontdesk@pbx.example.com", "busy"),
        (2, "+14155550111", "no-answer"),
    ]
    assert [(n.call_sid, n.outcome) for n in notices] == [(SID, CallOutcome.CALLER_HUNG_UP)]


def test_hang_up_with_no_dial_action_yet_keeps_the_ringing_tier(webhook: Webhook, notices: list[CallRecord]) -> None:
    """Twilio's status callback can come before (or instead of) the last Dial action."""
    call = Call(webhook)
    call.start()
    call.dial_ended(0, 1, "busy")
    call.ended(25)
    record = call.record
    assert record.outcome is CallOutcome.CALLER_HUNG_UP
    assert [(t.hop, t.target, t.outcome) for t in record.tiers] == [
        (1, "sip:frontdesk@pbx.example.com", "busy"),
        (2, "+14155550111", ""),  # was ringing when the caller gave up
    ]
    assert len(notices) == 1


def test_answered_call_is_logged_and_never_noticed(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook)
    call.start()
    call.dial_ended(0, 1, "busy")
    # The caller talks, then hangs up: the action says the call is over, yet tier 1 took it.
    call.dial_ended(1, 2, "completed", caller_gone=True, DialBridged="true", DialCallDuration="200")
    call.ended(230)
    record = call.record
    assert (record.outcome, record.answered_by) == (CallOutcome.ANSWERED, "+14155550111")
    assert [t.outcome for t in record.tiers] == ["busy", "completed"]
    assert notices == []


@pytest.fixture
def log_writes() -> Iterator[list[str]]:
    """The call-log requests the webhook sends, by operation name, as botocore sends them."""
    sent: list[str] = []
    events = call_log._client().meta.events

    def seen(model: Any, **_: Any) -> None:
        sent.append(model.name)

    events.register("before-call.dynamodb", seen)
    yield sent
    events.unregister("before-call.dynamodb", seen)


def test_each_dial_action_writes_the_log_once(
    webhook: Webhook, notices: list[CallRecord], log_writes: list[str]
) -> None:
    call = Call(webhook)
    call.start()
    assert log_writes == []  # the caller waits on /voice: nothing is written there
    call.dial_ended(0, 1, "busy")
    assert log_writes == ["PutItem"]  # the first action makes the item, its tiers and the next one ringing
    call.dial_ended(1, 2, "busy")
    assert log_writes == ["PutItem", "UpdateItem"]
    record = call.record
    assert (record.number, record.caller) == (NUMBER, call.params()["From"])
    assert [(t.hop, t.outcome) for t in call.record.tiers] == [(1, "busy"), (2, "busy"), (3, "")]


def test_first_dial_is_kept_when_the_item_already_has_tiers(webhook: Webhook, notices: list[CallRecord]) -> None:
    """A tiers map written before the first action (here: by hand, as an earlier webhook might have) is
    added to, never replaced or left without the dial."""
    call_log._Update().set("tiers", {"5": {"tier": 0, "target": "x", "outcome": "busy"}}).run(SID)
    call = Call(webhook)
    call.start()
    call.dial_ended(0, 1, "busy")
    assert [(t.hop, t.outcome) for t in call.record.tiers] == [(1, "busy"), (2, ""), (5, "busy")]


def test_first_dial_after_the_status_callback_keeps_both(webhook: Webhook, notices: list[CallRecord]) -> None:
    """Twilio does not order its callbacks: the call's end can be written before its first dial."""
    call = Call(webhook)
    call.start()
    call.ended(20)
    call.dial_ended(0, 1, "busy", caller_gone=True)
    record = call.record
    assert [(t.hop, t.outcome) for t in record.tiers] == [(1, "busy")]
    assert record.ended is not None and record.number == NUMBER


def test_a_later_dial_after_a_lost_first_write_still_makes_the_item(
    webhook: Webhook, notices: list[CallRecord], aws: Any
) -> None:
    call = Call(webhook)
    call.start()
    call.dial_ended(0, 1, "busy")
    aws.delete_item(TableName="failover-did-call-log", Key={"call_sid": {"S": SID}})  # as if that write failed
    call.dial_ended(1, 2, "no-answer")
    record = call.record
    assert [(t.hop, t.outcome) for t in record.tiers] == [(2, "no-answer"), (3, "")]
    assert (record.number, record.caller) == (NUMBER, call.params()["From"])  # the repair identifies the call


def test_retried_webhooks_write_one_record_and_one_notice(
    webhook: Webhook, notices: list[CallRecord], aws: Any
) -> None:
    call = Call(webhook)
    call.start()
    call.start()
    call.dial_ended(0, 1, "busy")
    call.dial_ended(0, 1, "busy")
    call.dial_ended(1, 2, "busy")
    call.dial_ended(2, 3, "no-answer")
    call.dial_ended(2, 3, "no-answer")
    call.voicemail(9)
    call.voicemail(9)
    for _ in range(3):
        call.ended(80)
        call.recording(9)
    assert len(log_items(aws)) == 1
    assert [t.hop for t in call.record.tiers] == [1, 2, 3]
    assert [n.outcome for n in notices] == [CallOutcome.VOICEMAIL]


def test_final_without_voicemail_closes_on_the_status_callback(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook, number=OTHER)
    call.start()
    call.dial_ended(0, 1, "busy")
    assert "<Record" not in call.dial_ended(1, 2, "failed", DialSipResponseCode="503")
    call.ended(50)
    assert [(n.outcome, n.number) for n in notices] == [(CallOutcome.FINAL, OTHER)]
    assert call.record.tiers[1].sip_code == 503


def test_test_call_is_logged_marked_and_never_noticed(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook, query="test=1")
    busy_cascade_to_voicemail(call)
    assert "/voice/recording?test=1" in call.answers[-1]  # the marker rides on the recording callback
    call.query = ""  # Twilio's status callback is the number's: it carries no marker
    call.ended(60)
    call.recording(0, status="absent")
    assert call.record.test and call.record.outcome is CallOutcome.FINAL
    assert notices == []


def test_unknown_number_is_logged_not_noticed(webhook: Webhook, notices: list[CallRecord]) -> None:
    call = Call(webhook, number="+14155550999")
    assert "not set up" in call.start()
    call.ended(3)
    assert call.record.outcome is CallOutcome.UNKNOWN_NUMBER
    assert notices == []


def test_a_failing_notice_never_changes_the_answer(
    webhook: Webhook, notices: list[CallRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(record: CallRecord, now: datetime) -> None:
        raise RuntimeError("SNS is down")

    monkeypatch.setattr(sys.modules["failover_did.notices"], "missed_call", broken)
    call = Call(webhook, number=OTHER)
    call.start()
    call.dial_ended(0, 1, "busy")
    call.dial_ended(1, 2, "busy")
    assert call.ended(20).endswith("<Response />")
    assert call.record.outcome is CallOutcome.FINAL


def test_a_missing_log_table_never_changes_the_answer(webhook: Webhook, notices: list[CallRecord], aws: Any) -> None:
    aws.delete_table(TableName="failover-did-call-log")
    call = Call(webhook)
    assert "sip:frontdesk@pbx.example.com" in call.start()
    # The rules are still read (the log has its own breaker): the cascade goes on.
    assert "+14155550111" in call.dial_ended(0, 1, "busy")
    call.ended(30)
    assert notices == []


@pytest.mark.parametrize(
    ("path", "extra", "status"),
    [
        ("/voice/status", {"CallStatus": "completed", "CallDuration": "1.5"}, 400),
        ("/voice/status", {"CallStatus": "hung-up"}, 400),
        ("/voice/recording", {"RecordingSid": "RE123", "RecordingStatus": "completed"}, 400),
        ("/voice/recording", {"RecordingStatus": "done"}, 400),
        ("/voice/recording", {"RecordingUrl": "https://evil.example.com/r.mp3", "RecordingStatus": "completed"}, 400),
    ],
)
def test_malformed_callbacks_are_refused(
    webhook: Webhook, notices: list[CallRecord], aws: Any, path: str, extra: dict[str, str], status: int
) -> None:
    result = webhook.post(path, call_params(SID, NUMBER, **extra))
    assert result.status == status, result.body
    assert log_items(aws) == []


@pytest.mark.parametrize("path", ["/voice/status", "/voice/recording"])
def test_unsigned_callbacks_are_forbidden(webhook: Webhook, notices: list[CallRecord], aws: Any, path: str) -> None:
    params = call_params(SID, NUMBER, CallStatus="completed", CallDuration="10", RecordingStatus="completed")
    assert webhook.post(path, params, signature="bm90LWEtc2lnbmF0dXJl").status == 403
    assert log_items(aws) == []


@pytest.mark.parametrize("answers", [False, True])
def test_an_unreachable_log_opens_the_shared_breaker_a_refusing_one_does_not(
    webhook: Webhook, notices: list[CallRecord], monkeypatch: pytest.MonkeyPatch, answers: bool
) -> None:
    """Nothing listening where the log is written (no answer): the rest of the request asks DynamoDB nothing
    more. A log table that answers with an error (here: it is gone) leaves the other tables alone."""
    import boto3
    from botocore.config import Config

    from failover_did.store import breaker
    from failover_did_cli.local_stack import free_port

    call = Call(webhook)
    call.start()
    if answers:
        boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="failover-did-call-log")
    else:
        dead = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            config=Config(retries={"max_attempts": 1}, connect_timeout=0.5),
        )
        monkeypatch.setattr(call_log, "_client", lambda: dead)
    assert "+14155550111" in call.dial_ended(0, 1, "busy")  # the cascade goes on either way
    assert breaker.dynamodb.is_open is not answers
    breaker.dynamodb.reset()
