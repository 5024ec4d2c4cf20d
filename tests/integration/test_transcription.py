"""Voicemail transcription through the real path: the <Record> asks for it when the rule's final says
`transcribe: true`, and Twilio's signed transcription callback stores the text once and sends it on once."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from failover_did.call_record import CallOutcome, CallRecord
from failover_did.store import call_log
from failover_did_cli.callsim import parse_reply
from tests.support import Webhook, call_params

TRANSCRIBED = "+14155550300"  # primary sip:support, then voicemail with transcription
PLAIN = "+14155550100"  # the shared rules: voicemail without transcription
SID = "CA" + "c" * 32
ACCOUNT = "AC" + "0" * 32
RECORDING_SID = "RE" + "c" * 32
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING_SID}"
TRANSCRIPTION_SID = "TR" + "c" * 32
RULE_YAML = """
numbers:
  "+14155550300":
    primary: {target: "sip:support@pbx.example.com", timeout: 15}
    triggers: [timeout, busy, failed]
    final: {say: "Please leave a message.", voicemail: true, transcribe: true}
"""


@pytest.fixture
def sent(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, CallRecord]]]:
    """Stands in for failover_did.notices: records each notice it is asked to send; adds the rule."""
    from failover_did.rules.validate import parse_rules_yaml
    from failover_did.store.rules_store import apply_rules

    apply_rules(parse_rules_yaml(RULE_YAML))
    calls: list[tuple[str, CallRecord]] = []
    module = types.ModuleType("failover_did.notices")
    module.missed_call = lambda record, now: calls.append(("missed", record))  # type: ignore[attr-defined]
    module.voicemail_transcribed = lambda record, now: calls.append(("transcript", record))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "failover_did.notices", module)
    call_log.log_breaker.reset()
    yield calls
    call_log.log_breaker.reset()


def post_ok(webhook: Webhook, path: str, params: dict[str, str], query: str = "") -> str:
    result = webhook.post(path, params, query)
    assert result.status == 200, result.body
    return result.body


def to_voicemail(webhook: Webhook, number: str = TRANSCRIBED, test: bool = False) -> str:
    """A call whose primary is busy, up to the <Record>; returns that TwiML."""
    query = "test=1" if test else ""
    dial = parse_reply(200, post_ok(webhook, "/voice", call_params(SID, number), query)).dial
    assert dial is not None
    action = urlsplit(dial.action).query.removesuffix("&test=1")
    busy = call_params(SID, number, CallStatus="in-progress", DialCallStatus="busy", DialCallDuration="0")
    return post_ok(webhook, "/voice/action", busy, "&".join(q for q in (action, query) if q))


def leave_message(webhook: Webhook, seconds: int = 20, number: str = TRANSCRIBED, test: bool = False) -> None:
    query = "test=1" if test else ""
    params = call_params(SID, number, CallStatus="in-progress", RecordingUrl=RECORDING_URL)
    post_ok(webhook, "/voice/voicemail", {**params, "RecordingDuration": str(seconds)}, query)
    post_ok(webhook, "/voice/status", call_params(SID, number, CallStatus="completed", CallDuration="60"))
    recording = {
        "AccountSid": ACCOUNT,
        "CallSid": SID,
        "RecordingSid": RECORDING_SID,
        "RecordingUrl": RECORDING_URL,
        "RecordingStatus": "completed",
        "RecordingDuration": str(seconds),
    }
    post_ok(webhook, "/voice/recording", recording, query)


def transcription(text: str = "Hi, this is Ann, please call me back.", status: str = "completed") -> dict[str, str]:
    # As Twilio posts it: the call, the recording and the transcription; no To/From.
    return {
        "AccountSid": ACCOUNT,
        "CallSid": SID,
        "RecordingSid": RECORDING_SID,
        "RecordingUrl": RECORDING_URL,
        "TranscriptionSid": TRANSCRIPTION_SID,
        "TranscriptionStatus": status,
        "TranscriptionText": text,
        "TranscriptionType": "fast",
        "TranscriptionUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Transcriptions/{TRANSCRIPTION_SID}",
        "ApiVersion": "2010-04-01",
    }


def log_items(aws: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.scan(TableName="failover-did-call-log")["Items"]
    return items


def test_record_asks_for_the_transcription_when_the_rule_says_so(webhook: Webhook, sent: list[Any]) -> None:
    answer = to_voicemail(webhook)
    assert 'transcribe="true"' in answer
    assert 'transcribeCallback="https://' in answer and '/voice/transcription"' in answer
    assert "recordingStatusCallback=" in answer  # the recording callback is still there
    callback = parse_reply(200, answer).transcription_callback  # what `simulate` posts the text to
    assert callback is not None and callback.endswith("/voice/transcription")


def test_a_rule_without_transcribe_renders_no_transcription(webhook: Webhook, sent: list[Any]) -> None:
    answer = to_voicemail(webhook, number=PLAIN)
    busy = call_params(SID, PLAIN, CallStatus="in-progress", DialCallStatus="busy")
    for _ in range(2):  # the shared rule's cascade: two more tiers before its voicemail
        answer = post_ok(webhook, "/voice/action", busy, _next(answer))
    assert "<Record" in answer
    assert "transcribe" not in answer


def _next(answer: str) -> str:
    dial = parse_reply(200, answer).dial
    assert dial is not None
    return urlsplit(dial.action).query


def test_the_transcript_is_stored_and_sent_once_even_when_retried(
    webhook: Webhook, sent: list[tuple[str, CallRecord]], aws: Any
) -> None:
    to_voicemail(webhook)
    leave_message(webhook)
    assert [kind for kind, _ in sent] == ["missed"]
    assert sent[0][1].transcript is None  # the missed-call notice went out before the text arrived

    body = post_ok(webhook, "/voice/transcription", transcription("Hi, this is Ann.\nPlease call\x07 me back."))
    assert body.endswith("<Response />")
    post_ok(webhook, "/voice/transcription", transcription("Hi, this is Ann.\nPlease call\x07 me back."))  # retry

    record = call_log.get(SID)
    assert record is not None and record.outcome is CallOutcome.VOICEMAIL
    assert record.transcript == "Hi, this is Ann. Please call me back."  # one line, no control characters
    transcripts = [r for kind, r in sent if kind == "transcript"]
    assert len(transcripts) == 1
    assert transcripts[0].call_sid == SID and transcripts[0].transcript == record.transcript
    assert transcripts[0].missed and transcripts[0].recording_url == RECORDING_URL
    assert len(log_items(aws)) == 1


def test_a_transcript_before_the_call_closes_rides_on_the_missed_call_notice(
    webhook: Webhook, sent: list[tuple[str, CallRecord]]
) -> None:
    to_voicemail(webhook)
    post_ok(webhook, "/voice/transcription", transcription("Call me back."))
    leave_message(webhook)
    missed = [r for kind, r in sent if kind == "missed"]
    assert len(missed) == 1 and missed[0].transcript == "Call me back."


def test_a_test_call_transcript_is_stored_and_never_noticed(
    webhook: Webhook, sent: list[tuple[str, CallRecord]]
) -> None:
    answer = to_voicemail(webhook, test=True)
    assert "/voice/transcription?test=1" in answer  # the marker rides on the transcription callback
    leave_message(webhook, test=True)
    post_ok(webhook, "/voice/transcription", transcription("Testing."), "test=1")
    record = call_log.get(SID)
    assert record is not None and record.test and record.transcript == "Testing."
    assert sent == []


def test_a_failed_transcription_stores_no_text_and_sends_nothing(
    webhook: Webhook, sent: list[tuple[str, CallRecord]], aws: Any
) -> None:
    to_voicemail(webhook)
    leave_message(webhook)
    post_ok(webhook, "/voice/transcription", transcription("", status="failed"))
    record = call_log.get(SID)
    assert record is not None and record.transcript is None
    assert [kind for kind, _ in sent] == ["missed"]
    item = log_items(aws)[0]
    assert item["transcription_status"] == {"S": "failed"} and "transcript" not in item


def test_a_failing_transcript_notice_never_changes_the_answer(
    webhook: Webhook, sent: list[tuple[str, CallRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(record: CallRecord, now: datetime) -> None:
        raise RuntimeError("SNS is down")

    monkeypatch.setattr(sys.modules["failover_did.notices"], "voicemail_transcribed", broken)
    to_voicemail(webhook)
    leave_message(webhook)
    assert post_ok(webhook, "/voice/transcription", transcription()).endswith("<Response />")
    record = call_log.get(SID)
    assert record is not None and record.transcript is not None


@pytest.mark.parametrize(
    "change",
    [
        {"TranscriptionSid": "TR123"},
        {"TranscriptionStatus": "done"},
        {"TranscriptionText": "a" * 5001},
        {"RecordingUrl": "https://evil.example.com/r.mp3"},
        {"CallSid": "CA" + "c" * 31},
    ],
)
def test_malformed_transcription_callbacks_are_refused(
    webhook: Webhook, sent: list[Any], aws: Any, change: dict[str, str]
) -> None:
    result = webhook.post("/voice/transcription", {**transcription(), **change})
    assert result.status == 400, result.body
    assert next(iter(change)) in result.body  # the answer names the parameter
    assert log_items(aws) == [] and sent == []


def test_a_transcription_callback_without_its_status_is_refused(webhook: Webhook, sent: list[Any], aws: Any) -> None:
    params = transcription()
    del params["TranscriptionStatus"]
    assert webhook.post("/voice/transcription", params).status == 400
    assert log_items(aws) == []


def test_an_unsigned_transcription_callback_is_forbidden(webhook: Webhook, sent: list[Any], aws: Any) -> None:
    result = webhook.post("/voice/transcription", transcription(), signature="bm90LWEtc2lnbmF0dXJl")
    assert result.status == 403
    assert log_items(aws) == [] and sent == []
