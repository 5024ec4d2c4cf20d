"""The voice webhook through the real Lambda handler: signed API Gateway events, DynamoDB in moto."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any
from unittest import mock

import pytest
from pynamodb.exceptions import GetError

from failover_did.store.tables import CallItem, RuleItem
from failover_did_cli.callsim import parse_reply
from tests.support import HOST, Webhook, call_params


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
    assert dial.get("action") == f"https://{HOST}/voice/action?tier=0&hop=1"
    assert [(n.tag, n.text) for n in dial] == [("Sip", "sip:frontdesk@pbx.example.com")]
    assert dial.get("callerId") is None


def test_anonymous_caller_is_presented_as_the_called_number(webhook: Webhook) -> None:
    dial = twiml(webhook.post("/voice", call_params(From="anonymous"))).find("Dial")
    assert dial is not None and dial.get("callerId") == "+14155550100"


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
    assert dial_of(result)[1] == f"https://{HOST}/prod/voice/action?tier=0&hop=1"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://calls.example.com/")
    custom = Webhook(host="calls.example.com")
    result = custom.post("/voice", call_params(), signed_url="https://calls.example.com/voice")
    assert dial_of(result)[1] == "https://calls.example.com/voice/action?tier=0&hop=1"
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


def test_screened_callee_accepts_with_1(webhook: Webhook) -> None:
    prompt = twiml(webhook.post("/voice/screen", call_params(sid="CAchild"), "tier=2"))
    gather = prompt.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == f"https://{HOST}/voice/screen/accept?tier=2"
    parent = "CA" + "1" * 32
    declined = webhook.post(
        "/voice/screen/accept", call_params(sid="CAchild", ParentCallSid=parent, Digits="2"), "tier=2"
    )
    assert [v.tag for v in twiml(declined)] == ["Say", "Hangup"]
    # not accepted: the cascade goes on to the final treatment even though Twilio says completed
    result = webhook.post("/voice/action", call_params(sid=parent, DialCallStatus="completed"), "tier=2&hop=3")
    assert parse_reply(result.status, result.body).records
    accepted = webhook.post(
        "/voice/screen/accept", call_params(sid="CAchild", ParentCallSid=parent, Digits="1"), "tier=2"
    )
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
