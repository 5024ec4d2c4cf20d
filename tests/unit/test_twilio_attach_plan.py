"""The pure parts of `failover-did twilio attach`: what changes, what is refused, credentials and URLs."""

from __future__ import annotations

from types import SimpleNamespace

import click
import pytest

from failover_did_cli.args import NUMBER
from failover_did_cli.twilio_cmd import (
    FieldChange,
    NumberState,
    api_base_url,
    binding_refusal,
    check_webhook_url,
    format_changes,
    plan_changes,
    rebase,
    status_callback_url,
    twilio_credentials,
    twilio_failure,
    update_params,
)

VOICE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/voice"
STATUS_URL = VOICE_URL + "/status"
ACCOUNT = "AC" + "a" * 32
KEY = "SK" + "b" * 32


def state(**fields: str | None) -> NumberState:
    return NumberState(sid="PN1", phone_number="+14155550100", **fields)  # type: ignore[arg-type]


def test_state_reads_a_record_and_empty_strings_as_none() -> None:
    record = SimpleNamespace(
        sid="PN1", phone_number="+14155550100", account_sid=ACCOUNT, voice_url="", voice_method="GET", trunk_sid=None
    )
    read = NumberState.of(record)
    assert (read.voice_url, read.voice_method, read.trunk_sid, read.voice_fallback_url) == (None, "GET", None, None)


def test_plan_sets_url_and_post_and_leaves_the_fallback_without_a_fallback_url() -> None:
    changes = plan_changes(
        state(voice_url="https://old/x", voice_method="GET", voice_fallback_url="https://f"), VOICE_URL
    )
    assert changes == (
        FieldChange("voice_url", "https://old/x", VOICE_URL),
        FieldChange("voice_method", "GET", "POST"),
        FieldChange("voice_fallback_url", "https://f", "https://f"),
        FieldChange("voice_fallback_method", None, None),
        FieldChange("status_callback", None, STATUS_URL),
        FieldChange("status_callback_method", None, "POST"),
    )
    assert update_params(changes) == {
        "voice_url": VOICE_URL,
        "voice_method": "POST",
        "status_callback": STATUS_URL,
        "status_callback_method": "POST",
    }


def test_plan_with_a_fallback_url_fetches_it_with_get() -> None:
    attached = {"status_callback": STATUS_URL, "status_callback_method": "POST"}
    changes = plan_changes(
        state(voice_url=VOICE_URL, voice_method="POST", voice_fallback_method="POST", **attached),
        VOICE_URL,
        "https://f",
    )
    assert update_params(changes) == {"voice_fallback_url": "https://f", "voice_fallback_method": "GET"}


def test_nothing_to_send_when_already_attached() -> None:
    attached = state(
        voice_url=VOICE_URL, voice_method="POST", status_callback=STATUS_URL, status_callback_method="POST"
    )
    assert update_params(plan_changes(attached, VOICE_URL)) == {}


def test_the_status_callback_is_the_voice_urls_status_route() -> None:
    assert status_callback_url("https://voice.example.com/prod/voice/") == "https://voice.example.com/prod/voice/status"
    assert status_callback_url("http://127.0.0.1:8080/voice?test=1") == "http://127.0.0.1:8080/voice/status?test=1"


def test_changes_print_aligned_before_and_after() -> None:
    lines = format_changes(plan_changes(state(voice_url="https://old/x", voice_method="POST"), VOICE_URL))
    assert lines == [
        f"  voice_url               https://old/x  ->  {VOICE_URL}",
        "  voice_method            POST           (unchanged)",
        "  voice_fallback_url      (none)         (unchanged)",
        "  voice_fallback_method   (none)         (unchanged)",
        f"  status_callback         (none)         ->  {STATUS_URL}",
        "  status_callback_method  (none)         ->  POST",
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"voice_receive_mode": "voice"}, None),
        ({"voice_application_sid": "AP1"}, "bound to voice application AP1; unbind it in the console first"),
        ({"trunk_sid": "TK1"}, "bound to SIP trunk TK1; unbind it in the console first"),
        ({"voice_receive_mode": "fax"}, "receives its calls as faxes"),
    ],
)
def test_binding_refusal(fields: dict[str, str], expected: str | None) -> None:
    refusal = binding_refusal(state(**fields))
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal


def test_webhook_urls() -> None:
    assert check_webhook_url(VOICE_URL, allow_http=False, option="--voice-url") == []
    with pytest.raises(click.BadParameter, match="not https"):
        check_webhook_url("http://voice.example.com/voice", allow_http=False, option="--voice-url")
    with pytest.raises(click.BadParameter, match="not an http"):
        check_webhook_url("ftp://voice.example.com/voice", allow_http=True, option="--voice-url")
    with pytest.raises(click.BadParameter, match="not an http"):
        check_webhook_url("voice.example.com/voice", allow_http=True, option="--voice-url")
    local = check_webhook_url("http://127.0.0.1:3000/voice", allow_http=True, option="--voice-url")
    assert [w.split(" is ")[1][:10] for w in local] == ["plain http", "on this ma"]
    assert "does not end in /voice" in check_webhook_url(VOICE_URL[:-6], allow_http=False, option="--voice-url")[0]
    assert check_webhook_url("https://static.example.com/x.xml", allow_http=False, option="--fallback-url") == []


def test_credentials_prefer_an_api_key() -> None:
    token = twilio_credentials({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t"})
    assert (token.username, token.password, token.account_sid) == (ACCOUNT, "t", ACCOUNT)
    key = twilio_credentials(
        {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": "s"}
    )
    assert (key.username, key.password, key.account_sid) == (KEY, "s", ACCOUNT)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": " "}, "TWILIO_AUTH_TOKEN is not set"),
        ({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": "s"}, r"TWILIO_ACCOUNT_SID is not set \(TWILIO_API_KEY is set\)"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY": KEY}, "TWILIO_API_SECRET is not set"),
        ({"TWILIO_ACCOUNT_SID": KEY, "TWILIO_AUTH_TOKEN": "t"}, r"must be the account SID \(AC...\)"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY": ACCOUNT, "TWILIO_API_SECRET": "s"}, r"API key SID \(SK"),
    ],
)
def test_credentials_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(click.UsageError, match=message):
        twilio_credentials(environ)


def test_api_base_url() -> None:
    assert api_base_url({}) is None
    assert api_base_url({"TWILIO_API_BASE_URL": "http://127.0.0.1:8080/"}) == "http://127.0.0.1:8080"
    assert api_base_url({"TWILIO_API_BASE_URL": "https://twilio-fake.example.com"}) == "https://twilio-fake.example.com"
    with pytest.raises(click.UsageError, match=r"only to 127\.0\.0\.1/localhost"):
        api_base_url({"TWILIO_API_BASE_URL": "http://10.0.0.5:8080"})
    with pytest.raises(click.UsageError, match="not an http"):
        api_base_url({"TWILIO_API_BASE_URL": "127.0.0.1:8080"})


def test_rebase_keeps_path_and_query() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PhoneNumber=%2B1"
    assert rebase(url, "http://127.0.0.1:9000") == (
        "http://127.0.0.1:9000/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PhoneNumber=%2B1"
    )
    assert rebase(url, "https://proxy.example.com/twilio").startswith("https://proxy.example.com/twilio/2010-04-01/")


def test_twilio_failure_reads_a_list_page_error_and_a_rest_exception() -> None:
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.http.response import Response

    body = '{"code": 20003, "message": "Authenticate", "detail": "Your AccountSid or AuthToken was incorrect."}'
    page_error = TwilioException("Unable to fetch page", Response(401, body))
    assert twilio_failure(page_error) == (401, 20003, "Your AccountSid or AuthToken was incorrect")
    rest_error = TwilioRestException(404, "/x.json", "Unable to update record: not found", 20404, "POST")
    assert twilio_failure(rest_error) == (404, 20404, "Unable to update record: not found")
    assert twilio_failure(TwilioException("Unable to fetch page", Response(500, "<html>"))) == (
        500,
        None,
        "('Unable to fetch page', HTTP 500 <html>)",
    )


@pytest.mark.parametrize(("value", "expected"), [("+14155550100", "+14155550100"), ("14155550100", "+14155550100")])
def test_number_with_or_without_plus(value: str, expected: str) -> None:
    assert NUMBER.convert(value, None, None) == expected


@pytest.mark.parametrize("value", ["sip:frontdesk@pbx.example.com", "4155550100x", "+1911", ""])
def test_number_refused(value: str) -> None:
    with pytest.raises(click.BadParameter):
        NUMBER.convert(value, None, None)
