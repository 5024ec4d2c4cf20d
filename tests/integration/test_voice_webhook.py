"""The voice webhook through the real Lambda handler: signed API Gateway events, DynamoDB in moto."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
from pynamodb.exceptions import GetError
from twilio.request_validator import RequestValidator

from failover_did.settings import settings
from failover_did.store import health_store
from failover_did.store.tables import CallItem, EventItem, FailoverCount, RuleItem
from failover_did.webhook.app import handler
from failover_did_cli.apigw import LambdaContext, http_event
from failover_did_cli.callsim import parse_reply
from tests.support import HOST, TOKEN, Webhook, call_params


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """settings() is read once per container; tests that change the environment start a new one."""
    settings.cache_clear()
    yield
    settings.cache_clear()


def twiml(result: Any) -> ET.Element:
    assert result.status == 200, result.body
    assert result.headers["Content-Type"] == "application/xml"
    return ET.fromstring(result.body)


def dial_of(result: Any) -> tuple[str, str, str, str]:
    reply = parse_reply(result.status, result.body)
    assert reply.dial is not None, result.body
    return reply.dial.targets[0], reply.dial.action, str(reply.dial.timeout), reply.verbs[0]


def test_incoming_call_dials_the_primary_with_its_timeout(webhook: Webhook) -> None:
    result = webhook.post("/voice", call_params())
    root = twiml(result)
    dial = root.find("Dial")
    assert dial is not None and root[0] is dial  # Dial first, so answerOnBridge keeps ringback
    assert dial.get("timeout") == "15" and dial.get("answerOnBridge") == "true"
    assert re.fullmatch(rf"https://{HOST}/voice/action\?tier=0&hop=1&start=[0-9]{{10}}", dial.get("action") or "")
    assert [(n.tag, n.text) for n in dial] == [("Sip", "sip:frontdesk@pbx.example.com")]
    assert dial.get("callerId") is None


@pytest.mark.parametrize("caller", ["anonymous", "+266696687", "+7378742833", "+0000000000", "Restricted", "+1"])
def test_hidden_caller_is_presented_as_the_called_number(webhook: Webhook, caller: str) -> None:
    dial = twiml(webhook.post("/voice", call_params(From=caller, Caller=caller))).find("Dial")
    assert dial is not None and dial.get("callerId") == "+14155550100"
    action = webhook.post("/voice/action", call_params(From=caller, DialCallStatus="busy"), "tier=0&hop=1")
    later = twiml(action).find("Dial")
    assert later is not None and later.get("callerId") == "+14155550100"


@pytest.mark.parametrize("caller", ["+14155552671", "+442079460958", "+61491570156"])
def test_a_valid_caller_is_passed_through(webhook: Webhook, caller: str) -> None:
    dial = twiml(webhook.post("/voice", call_params(From=caller, Caller=caller))).find("Dial")
    assert dial is not None and dial.get("callerId") is None


def test_full_cascade_to_voicemail(webhook: Webhook) -> None:
    first = webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    assert dial_of(first)[:3] == ("+14155550111", f"https://{HOST}/voice/action?tier=1&hop=2", "20")
    second = webhook.post("/voice/action", call_params(DialCallStatus="no-answer"), "tier=1&hop=2")
    reply = parse_reply(second.status, second.body)
    assert reply.dial is not None and reply.dial.targets == ("sip:oncall@dr.example.net",)
    assert reply.dial.screen_urls == (f"https://{HOST}/voice/screen?tier=2",)
    last = webhook.post(
        "/voice/action", call_params(DialCallStatus="failed", DialSipResponseCode="503"), "tier=2&hop=3"
    )
    final = parse_reply(last.status, last.body)
    assert final.say == "Nobody is here." and final.records and final.hangs_up


def test_answer_and_caller_hang_up_end_the_call(webhook: Webhook) -> None:
    answered = webhook.post(
        "/voice/action", call_params(DialCallStatus="completed", DialBridged="true"), "tier=0&hop=1"
    )
    assert [v.tag for v in twiml(answered)] == ["Hangup"]
    gone = webhook.post("/voice/action", call_params(DialCallStatus="canceled"), "tier=0&hop=1")
    assert [v.tag for v in twiml(gone)] == ["Hangup"]


def test_number_without_timeout_trigger_goes_to_final_on_ring_out(webhook: Webhook) -> None:
    result = webhook.post("/voice/action", call_params(to="+14155550200", DialCallStatus="no-answer"), "tier=0&hop=1")
    reply = parse_reply(result.status, result.body)
    assert reply.dial is None and reply.hangs_up and not reply.records
    busy = webhook.post(
        "/voice/action",
        call_params(to="+14155550200", DialCallStatus="failed", DialSipResponseCode="502"),
        "tier=0&hop=1",
    )
    assert dial_of(busy)[0] == "+14155550222"


def test_unknown_number_hears_a_message(webhook: Webhook) -> None:
    reply = parse_reply(*_sb(webhook.post("/voice", call_params(to="+14155550999"))))
    assert reply.dial is None and reply.say and "not set up" in reply.say and reply.hangs_up


def _sb(result: Any) -> tuple[int, str]:
    return result.status, result.body


@pytest.mark.parametrize(
    "signature",
    ["", "bogus", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="],
)
def test_bad_signatures_get_403_and_dial_nothing(webhook: Webhook, signature: str) -> None:
    result = webhook.post("/voice", call_params(), signature=signature)
    assert result.status == 403 and "Dial" not in result.body


def test_signature_for_other_params_or_url_is_refused(webhook: Webhook) -> None:
    from twilio.request_validator import RequestValidator

    from tests.support import TOKEN

    good = RequestValidator(TOKEN).compute_signature(webhook.url("/voice"), call_params())
    assert webhook.post("/voice", call_params(), signature=good).status == 200
    assert webhook.post("/voice", call_params(To="+14155550200"), signature=good).status == 403
    other = RequestValidator(TOKEN).compute_signature(webhook.url("/voice/action", "tier=0&hop=1"), call_params())
    assert (
        webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=2&hop=1", signature=other).status == 403
    )
    wrong_token = RequestValidator("another-token").compute_signature(webhook.url("/voice"), call_params())
    assert webhook.post("/voice", call_params(), signature=wrong_token).status == 403


def test_stage_path_and_public_base_url(rules: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    staged = Webhook(stage_prefix="/prod")
    result = staged.post("/voice", call_params())
    assert dial_of(result)[1].startswith(f"https://{HOST}/prod/voice/action?tier=0&hop=1&start=")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://calls.example.com/")
    settings.cache_clear()
    custom = Webhook(host="calls.example.com")
    result = custom.post("/voice", call_params(), signed_url="https://calls.example.com/voice")
    assert dial_of(result)[1].startswith("https://calls.example.com/voice/action?tier=0&hop=1&start=")
    # a signature over the execute-api URL no longer matches once a public URL is configured
    assert Webhook().post("/voice", call_params()).status == 403


def test_retried_callback_gets_the_same_twiml(webhook: Webhook) -> None:
    params = call_params(DialCallStatus="busy", DialCallSid="CA" + "2" * 32)
    first = webhook.post("/voice/action", params, "tier=0&hop=1")
    again = webhook.post("/voice/action", params, "tier=0&hop=1")
    assert first.status == again.status == 200 and first.body == again.body


def test_base64_body_is_read(webhook: Webhook) -> None:
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from failover_did.webhook.app import handler
    from failover_did_cli.apigw import LambdaContext, http_event
    from tests.support import TOKEN

    params = call_params()
    event = http_event(
        "POST",
        "/voice",
        headers={
            "Host": HOST,
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(webhook.url("/voice"), params),
        },
    )
    event["body"] = base64.b64encode(urlencode(params).encode()).decode()
    event["isBase64Encoded"] = True
    result = handler(event, LambdaContext())
    assert result["statusCode"] == 200 and "<Sip>sip:frontdesk@pbx.example.com</Sip>" in result["body"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"To=%FF%FE\xff\xfe", "UTF-8"),
        (b"a=" + b"x" * 20000, "too large"),
        (b"&".join([b"k=v"] * 150), "fields"),
    ],
)
def test_garbage_bodies_get_400_not_5xx(webhook: Webhook, body: bytes, reason: str) -> None:
    result = webhook.post("/voice", {}, body=body)
    assert result.status == 400 and reason in result.body


@pytest.mark.parametrize("query", ["", "tier=x&hop=1", "tier=1", "tier=-1&hop=1", "tier=100&hop=1"])
def test_bad_action_query_gets_400(webhook: Webhook, query: str) -> None:
    assert webhook.post("/voice/action", call_params(DialCallStatus="busy"), query).status == 400


CHILD = "CA" + "c" * 32  # the screened callee's leg


def test_screened_callee_accepts_with_1(webhook: Webhook) -> None:
    prompt = twiml(webhook.post("/voice/screen", call_params(sid=CHILD), "tier=2"))
    gather = prompt.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == f"https://{HOST}/voice/screen/accept?tier=2"
    parent = "CA" + "1" * 32
    declined = webhook.post("/voice/screen/accept", call_params(sid=CHILD, ParentCallSid=parent, Digits="2"), "tier=2")
    assert [v.tag for v in twiml(declined)] == ["Say", "Hangup"]
    # not accepted: the cascade goes on to the final treatment even though Twilio says completed
    result = webhook.post("/voice/action", call_params(sid=parent, DialCallStatus="completed"), "tier=2&hop=3")
    assert parse_reply(result.status, result.body).records
    accepted = webhook.post("/voice/screen/accept", call_params(sid=CHILD, ParentCallSid=parent, Digits="1"), "tier=2")
    assert list(twiml(accepted)) == []
    assert CallItem.get(parent, "screen#2").expires_at > 0
    result = webhook.post("/voice/action", call_params(sid=parent, DialCallStatus="completed"), "tier=2&hop=3")
    assert [v.tag for v in twiml(result)] == ["Hangup"]


def test_screen_declined_by_bridged_false(webhook: Webhook) -> None:
    result = webhook.post("/voice/action", call_params(DialCallStatus="completed", DialBridged="false"), "tier=2&hop=3")
    assert parse_reply(result.status, result.body).records


def test_rule_cache_serves_last_known_good_when_dynamodb_fails(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dial_of(webhook.post("/voice", call_params()))[0] == "sip:frontdesk@pbx.example.com"
    from failover_did.webhook import app

    monkeypatch.setattr(app.rules, "_ttl", 0)  # every lookup goes to DynamoDB
    with mock.patch.object(RuleItem, "get", side_effect=GetError("throttled")):
        result = webhook.post("/voice", call_params())
        assert dial_of(result)[0] == "sip:frontdesk@pbx.example.com"
        later = webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
        assert dial_of(later)[0] == "+14155550111"


def test_no_cached_rule_and_dynamodb_down_still_answers_twiml(webhook: Webhook) -> None:
    with mock.patch.object(RuleItem, "get", side_effect=GetError("unreachable")):
        result = webhook.post("/voice", call_params())
    reply = parse_reply(result.status, result.body)
    assert result.status == 200 and reply.say and reply.hangs_up


def test_rule_changes_reach_the_webhook_after_the_cache_expires(webhook: Webhook) -> None:
    from failover_did.rules.validate import parse_rules_yaml
    from failover_did.store.rules_store import apply_rules
    from failover_did.webhook import app

    assert dial_of(webhook.post("/voice", call_params()))[0] == "sip:frontdesk@pbx.example.com"
    apply_rules(parse_rules_yaml('numbers: {"+14155550100": {primary: {target: "+14155550133"}}}'))
    assert dial_of(webhook.post("/voice", call_params()))[0] == "sip:frontdesk@pbx.example.com"  # cached
    now = app.rules._clock()
    with mock.patch.object(app.rules, "_clock", return_value=now + 10.5):
        assert dial_of(webhook.post("/voice", call_params()))[0] == "+14155550133"


def test_unknown_path_is_404_not_5xx(webhook: Webhook) -> None:
    assert webhook.post("/voice/nope", call_params()).status == 404


# --- what a request may not change: folded signatures, test calls, the signed URL's host ------------------


def stored_state() -> dict[str, list[dict[str, Any]]]:
    """Everything a webhook request can write that health, budgets and the event log are made of."""
    return {
        "health": sorted((asdict(h) for h in health_store.all_health()), key=str),
        "events": sorted((i.attribute_values for i in EventItem.scan() if not i.sk.startswith("count#")), key=str),
        "counts": sorted((i.attribute_values for i in FailoverCount.scan() if i.sk.startswith("count#")), key=str),
        "calls": sorted((i.attribute_values for i in CallItem.scan()), key=str),
    }


FAILED_503 = call_params(CallStatus="in-progress", DialCallStatus="failed", DialSipResponseCode="503")


def folds(captured: dict[str, str]) -> list[dict[str, str]]:
    """Requests with the captured request's signature: a value absorbs the keys and values after it."""
    keys = sorted(captured)
    variants = []
    for first in range(len(keys) - 1):
        for last in range(first + 1, min(first + 3, len(keys))):
            folded = {k: v for k, v in captured.items() if k not in keys[first + 1 : last + 1]}
            folded[keys[first]] = captured[keys[first]] + "".join(k + captured[k] for k in keys[first + 1 : last + 1])
            variants.append(folded)
    return variants


def test_folded_replays_of_a_captured_callback_change_nothing(webhook: Webhook) -> None:
    """The issue's attack: each fold gives the captured failed-leg callback a CallSid never seen, so each
    replay would count as a new live failure and a new failover, until a healthy primary is marked down."""
    url = webhook.url("/voice/action", "tier=0&hop=1")
    signature = RequestValidator(TOKEN).compute_signature(url, FAILED_503)
    issue_fold = {k: v for k, v in FAILED_503.items() if k != "CallStatus"}
    issue_fold["CallSid"] = FAILED_503["CallSid"] + "CallStatus" + FAILED_503["CallStatus"]
    variants = [issue_fold, *folds(FAILED_503)]
    assert len(variants) >= 20
    before = stored_state()
    assert before["health"] == [] and before["counts"] == []  # a healthy primary, nothing counted
    for folded in variants:
        assert RequestValidator(TOKEN).validate(url, folded, signature)  # the signature still matches
        result = webhook.post("/voice/action", folded, "tier=0&hop=1", signature=signature)
        assert result.status == 400 and "<Dial" not in result.body, (folded, result.body)
    assert stored_state() == before
    incoming = webhook.post("/voice", call_params())
    assert dial_of(incoming)[0] == "sip:frontdesk@pbx.example.com"  # the primary is still dialed first


def test_the_folded_request_is_answered_with_the_reason(webhook: Webhook) -> None:
    folded = {k: v for k, v in FAILED_503.items() if k != "CallStatus"}
    folded["CallSid"] = FAILED_503["CallSid"] + "CallStatusin-progress"
    signature = RequestValidator(TOKEN).compute_signature(webhook.url("/voice/action", "tier=0&hop=1"), FAILED_503)
    result = webhook.post("/voice/action", folded, "tier=0&hop=1", signature=signature)
    assert result.status == 400
    assert result.body.startswith("bad request: CallSid='CA1111") and "CallStatusin-progress" in result.body
    assert "32 lowercase hex digits" in result.body


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"CallSid": ""}, "CallSid is missing"),
        ({"DialCallStatus": "cancelled"}, "DialCallStatus='cancelled'"),
        ({"DialSipResponseCode": "5033"}, "DialSipResponseCode='5033'"),
        ({"AccountSid": "ACnothex"}, "AccountSid='ACnothex'"),
        ({"To": "+1 415 555 0100"}, "To='+1 415 555 0100'"),
    ],
)
def test_signed_requests_out_of_form_get_400_and_change_nothing(
    webhook: Webhook, change: dict[str, str], reason: str
) -> None:
    before = stored_state()
    result = webhook.post("/voice/action", {**FAILED_503, **change}, "tier=0&hop=1")
    assert result.status == 400 and reason in result.body
    assert stored_state() == before


def test_incoming_call_without_a_number_is_a_400(webhook: Webhook) -> None:
    params = {k: v for k, v in call_params().items() if k not in ("To", "Called")}
    result = webhook.post("/voice", params)
    assert result.status == 400 and "To and Called are both missing" in result.body


def test_another_twilio_account_is_refused_when_one_is_configured(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "5" * 32)
    settings.cache_clear()
    refused = webhook.post("/voice", call_params())  # AccountSid AC000…
    assert refused.status == 400 and "AccountSid=" in refused.body
    assert dial_of(webhook.post("/voice", call_params(AccountSid="AC" + "5" * 32)))[0].startswith("sip:")


def test_a_failover_counts_once_as_before(webhook: Webhook) -> None:
    """The control for the tests below: a real call's 503 is a passive failure, a failover and a count."""
    result = webhook.post("/voice/action", FAILED_503, "tier=0&hop=1")
    assert dial_of(result)[0] == "+14155550111"
    state = stored_state()
    assert [h["failures"] for h in state["health"]] == [1]
    assert [c["failovers"] for c in state["counts"]] == [1]
    assert [e["detail"].get("test") for e in state["events"]] == [None]


def test_a_test_call_is_marked_on_every_url_and_never_counted(webhook: Webhook) -> None:
    incoming = webhook.post("/voice", call_params(), "test=1")
    assert re.fullmatch(rf"https://{HOST}/voice/action\?tier=0&hop=1&start=[0-9]+&test=1", dial_of(incoming)[1])
    failed = webhook.post("/voice/action", FAILED_503, "tier=0&hop=1&test=1")
    target, action, _, _ = dial_of(failed)
    assert target == "+14155550111" and action == f"https://{HOST}/voice/action?tier=1&hop=2&test=1"
    screened = webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=1&hop=2&test=1")
    reply = parse_reply(screened.status, screened.body)
    assert reply.dial is not None and reply.dial.screen_urls == (f"https://{HOST}/voice/screen?tier=2&test=1",)
    prompt = twiml(webhook.post("/voice/screen", call_params(), "tier=2&test=1")).find("Gather")
    assert prompt is not None and prompt.get("action") == f"https://{HOST}/voice/screen/accept?tier=2&test=1"
    final = webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=2&hop=3&test=1")
    record = twiml(final).find("Record")
    assert record is not None and record.get("action") == f"https://{HOST}/voice/voicemail?test=1"
    state = stored_state()
    assert state["health"] == [] and state["counts"] == []  # no passive count, no budget count
    assert [e["detail"]["test"] for e in state["events"]] == [True, True]  # logged, marked


def test_a_captured_real_request_cannot_gain_the_test_marker(webhook: Webhook) -> None:
    signature = RequestValidator(TOKEN).compute_signature(webhook.url("/voice/action", "tier=0&hop=1"), FAILED_503)
    result = webhook.post("/voice/action", FAILED_503, "tier=0&hop=1&test=1", signature=signature)
    assert result.status == 403


@pytest.mark.parametrize("query", ["tier=0&hop=1&test=0", "tier=0&hop=1&test=", "tier=0&hop=1&test=1&test=1"])
def test_a_test_marker_other_than_1_is_a_400(webhook: Webhook, query: str) -> None:
    result = webhook.post("/voice/action", FAILED_503, query)
    assert result.status == 400 and "test must be 1" in result.body
    assert stored_state()["health"] == []


def signed_event(domain: str, host_header: str, signed_for: str, proto: str = "https") -> dict[str, Any]:
    params = call_params()
    body = urlencode(params).encode()
    signature = RequestValidator(TOKEN).compute_signature(signed_for, params)
    headers = {"Host": host_header, "X-Forwarded-Proto": proto, "X-Twilio-Signature": signature}
    return http_event("POST", "/voice", headers=headers, body=body, domain_name=domain)


def test_the_signed_url_is_the_domain_api_gateway_received_not_the_host_header(rules: Any) -> None:
    real = handler(signed_event(HOST, "evil.example", f"https://{HOST}/voice"), LambdaContext())
    assert real["statusCode"] == 200 and f"https://{HOST}/voice/action" in real["body"]
    forged_host = handler(signed_event(HOST, "evil.example", "https://evil.example/voice"), LambdaContext())
    assert forged_host["statusCode"] == 403
    forged_proto = handler(signed_event(HOST, HOST, f"http://{HOST}/voice", proto="http"), LambdaContext())
    assert forged_proto["statusCode"] == 403
