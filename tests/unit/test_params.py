"""Every Twilio parameter the webhook reads has its documented form; a folded signature is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.request_validator import RequestValidator

from failover_did.settings import settings
from failover_did.webhook.params import Refused, check_params

SID = "CA" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "fedcba9876543210" * 2
BASE = {
    "CallSid": SID,
    "AccountSid": ACCOUNT,
    "From": "+14155552671",
    "Caller": "+14155552671",
    "To": "+14155550100",
    "Called": "+14155550100",
    "CallStatus": "in-progress",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
}


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    settings.cache_clear()
    yield
    settings.cache_clear()


def refusal(params: dict[str, str], route: str = "/voice/action") -> str | None:
    try:
        check_params(params, route)
    except Refused as refused:
        return str(refused)
    return None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CallSid", SID),
        ("ParentCallSid", SID),
        ("DialCallSid", SID),
        ("CallStatus", "no-answer"),
        ("DialCallStatus", "canceled"),
        ("DialCallStatus", "answered"),
        ("DialSipResponseCode", "100"),
        ("DialSipResponseCode", "699"),
        ("DialBridged", "false"),
        ("Digits", ""),
        ("Digits", "*1#"),
        ("Digits", "hangup"),
        ("DialCallDuration", "0"),
        ("RecordingDuration", "17"),
        ("From", "anonymous"),
        ("From", "+266696687"),
        ("Caller", "sip:alice@pbx.example.com"),
        ("RecordingUrl", f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1"),
        ("TranscriptionSid", "TR" + "0" * 32),
        ("TranscriptionStatus", "completed"),
        ("TranscriptionStatus", "failed"),
        ("TranscriptionText", ""),
        ("TranscriptionText", "Hi, it's Ann\nplease call me back. " * 100),
    ],
)
def test_documented_values_pass(name: str, value: str) -> None:
    assert refusal({**BASE, name: value}) is None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("CallSid", "CA" + "0" * 31, "CA followed by 32 lowercase hex digits"),
        ("CallSid", "CA" + SID[2:].upper(), "32 lowercase hex"),
        ("CallSid", SID + "CallStatusin-progress", "32 lowercase hex"),
        ("ParentCallSid", "CAchild", "32 lowercase hex"),
        ("DialCallSid", "", "32 lowercase hex"),
        ("AccountSid", "AC" + "0" * 31, "AC followed by 32"),
        ("CallStatus", "COMPLETED", "one of"),
        ("CallStatus", "complete", "one of"),
        ("DialCallStatus", "cancelled", "one of"),
        ("DialCallStatus", "in-progress", "one of"),
        ("DialSipResponseCode", "99", "100 to 699"),
        ("DialSipResponseCode", "700", "100 to 699"),
        ("DialSipResponseCode", "²²²", "100 to 699"),
        ("DialBridged", "TRUE", "one of"),
        ("Digits", "1" * 33, "up to 32"),
        ("Digits", "1a", "up to 32"),
        ("DialCallDuration", "-1", "whole number"),
        ("RecordingDuration", "1.5", "whole number"),
        ("To", "anonymous", "E.164"),
        ("To", "+1415555010012345678", "E.164"),
        ("Called", "sip:oncall@dr.example.net", "E.164"),
        ("From", "", "printable"),
        ("From", "x" * 129, "printable"),
        ("Caller", "+1415\x00", "printable"),
        ("RecordingUrl", "http://api.twilio.com/rec", "api.twilio.com"),
        ("RecordingUrl", "https://api.twilio.com.evil.example/rec", "api.twilio.com"),
        ("RecordingUrl", "https://evil.example/?api.twilio.com", "api.twilio.com"),
        ("TranscriptionSid", "TR" + "0" * 31, "TR followed by 32"),
        ("TranscriptionSid", "CA" + "0" * 32, "TR followed by 32"),
        ("TranscriptionStatus", "in-progress", "one of"),
        ("TranscriptionText", "x" * 5001, "at most 5000"),
    ],
)
def test_a_value_out_of_form_is_refused_naming_it(name: str, value: str, reason: str) -> None:
    message = refusal({**BASE, name: value})
    assert message is not None and message.startswith(f"{name}=") and reason in message
    assert repr(value[:80])[1:-1][:20] in message


def test_required_parameters() -> None:
    assert refusal({k: v for k, v in BASE.items() if k != "CallSid"}) == "CallSid is missing"
    assert refusal({**BASE, "CallSid": ""}) == "CallSid is missing"
    no_number = {k: v for k, v in BASE.items() if k not in ("To", "Called")}
    assert refusal(no_number, "/voice") == "To and Called are both missing: no number to look up"
    assert refusal({**BASE, "To": ""}, "/voice") is not None  # an empty To is not E.164 either
    assert refusal({k: v for k, v in BASE.items() if k != "To"}, "/voice") is None  # Called is enough


def test_screened_callee_may_be_a_sip_uri_only_on_the_screen_routes() -> None:
    child = {**BASE, "To": "sip:oncall@dr.example.net", "Called": "sip:oncall@dr.example.net", "ParentCallSid": SID}
    assert refusal(child, "/voice/screen") is None
    assert refusal(child, "/voice/screen/accept") is None
    assert refusal(child, "/voice/action") is not None


def test_the_folded_request_from_the_issue_is_refused() -> None:
    """`CallSid=CA…CallStatusin-progress` with no CallStatus: the same signature, a CallSid never seen."""
    captured = {**BASE, "DialCallStatus": "failed", "DialSipResponseCode": "503"}
    folded = {k: v for k, v in captured.items() if k != "CallStatus"}
    folded["CallSid"] = SID + "CallStatus" + "in-progress"
    url = "https://abc.execute-api.us-east-1.amazonaws.com/voice/action?tier=0&hop=1"
    validator = RequestValidator("token")
    assert validator.validate(url, folded, validator.compute_signature(url, captured))  # the signature holds
    message = refusal(folded)
    assert message is not None and message.startswith("CallSid='CA0123") and "32 lowercase hex" in message


def test_a_parameter_folded_into_one_the_webhook_does_not_read_is_refused() -> None:
    """DialSipCallId sorts just before DialSipResponseCode: a fold there hides the SIP code."""
    captured = {**BASE, "DialCallStatus": "failed", "DialSipCallId": "abc@pbx", "DialSipResponseCode": "486"}
    folded = {k: v for k, v in captured.items() if k != "DialSipResponseCode"}
    folded["DialSipCallId"] = "abc@pbxDialSipResponseCode486"
    message = refusal(folded)
    assert message == ("the value of 'DialSipCallId' contains the parameter name DialSipResponseCode: a folded request")
    assert refusal(captured) is None


def test_account_sid_must_be_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(BASE) is None  # not configured: any SID of the right form
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    settings.cache_clear()
    message = refusal(BASE)
    assert message is not None and message.startswith(f"AccountSid='{ACCOUNT}'") and "AC" + "1" * 32 in message
    assert refusal({**BASE, "AccountSid": "AC" + "1" * 32}) is None


def test_a_long_value_is_shown_bounded() -> None:
    message = refusal({**BASE, "From": "9" * 300})
    assert message is not None and len(message) < 200
