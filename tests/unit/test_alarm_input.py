"""What arrives on the alarm topic is read strictly and never crashes the formatter: malformed numbers
become "unknown", messages that are no alarm are not relayed, and text from the message cannot add lines to
the email or choose where its console link goes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover_did.alerts.alarm import Alarm, Kind, NotAnAlarm, of_record
from failover_did.alerts.alarm_notice import compose, not_an_alarm
from failover_did.alerts.gsm import SMS_LIMIT, SUBJECT_LIMIT, septets
from failover_did.alerts.situation import Situation
from failover_did.alerts.wording import one_line

ALARMS = Path(__file__).resolve().parents[1] / "data" / "alarms"
NOW = datetime(2026, 11, 28, 10, 45, tzinfo=UTC)
LABELS = (
    "Alarm name: ",
    "In the console: ",
    "CloudWatch says: ",
    "Alarm '",
    "What to check:",
    "Down destinations",
    "Description: ",
)


def envelope(fixture: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ALARMS / f"{fixture}.json").read_text())
    record: dict[str, Any] = loaded["Records"][0]
    return record


def message(fixture: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(envelope(fixture)["Sns"]["Message"])
    return loaded


def record_of(text: str, fixture: str = "unknown_alarm") -> dict[str, Any]:
    record = envelope(fixture)
    record["Sns"] = {**record["Sns"], "Message": text}
    return record


def arrived(text: str, fixture: str = "unknown_alarm") -> Alarm | NotAnAlarm:
    return of_record(record_of(text, fixture))


def parsed(changes: dict[str, Any], fixture: str = "unknown_alarm") -> Alarm:
    body = message(fixture)
    trigger = {**body["Trigger"], **changes.pop("Trigger", {})}
    result = arrived(json.dumps({**body, **changes, "Trigger": trigger}), fixture)
    assert isinstance(result, Alarm)
    return result


def check_sms_and_subject(sms: str, subject: str) -> None:
    assert len(sms) <= SMS_LIMIT and septets(sms) <= SMS_LIMIT
    assert sms.isascii() and sms.isprintable() and sms.startswith("failover-did")
    assert len(subject) <= SUBJECT_LIMIT and subject.isascii() and subject.isprintable()


# --- malformed numbers: the page goes out, the value is "unknown" --------------------------------------


@pytest.mark.parametrize("period", ["five minutes", "300", None, True, -60, 0, 1.5, 10**30, [300], {"s": 1}])
def test_a_malformed_period_is_unknown_and_the_notice_still_goes_out(period: object) -> None:
    a = parsed({"Trigger": {"Period": period}}, "webhook_errors_alarm")
    assert a.period is None
    assert compose(a, Situation()).sms == (
        "failover-did: webhook errors - the voice function failed 4 times (period unknown); "
        "callers may get Twilio's fallback or an error"
    )


def test_numbers_json_cannot_hold_are_unknown_not_a_crash() -> None:
    text = json.dumps(message("unknown_alarm"))
    text = text.replace('"Threshold": 1.0', '"Threshold": 1e400').replace('"Period": 60', '"Period": 1e400')
    huge = "9" * 5000  # more digits than int() accepts
    text = text.replace("[12.0 (", f"[{huge} (")
    a = arrived(text.replace("Reads of the rules table are being throttled.", ""))
    assert isinstance(a, Alarm)
    assert (a.threshold, a.period, a.value) == (None, None, None)
    assert compose(a, Situation()).sms.startswith("failover-did: failover-did-RulesTableThrottles is in ALARM - ")

    digits = arrived(text.replace('"Threshold": 1e400', f'"Threshold": {huge}'))
    assert isinstance(digits, Alarm) and digits.threshold is None


def test_a_huge_but_finite_datapoint_is_shown_not_crashed_on() -> None:
    reason = "Threshold Crossed: 1 datapoint [1e300 (28/11/26 10:39:00)] was greater than the threshold (1.0)."
    a = parsed({"NewStateReason": reason, "AlarmDescription": ""})
    assert a.value == 1e300
    assert compose(a, Situation()).sms == (
        "failover-did: failover-did-RulesTableThrottles is in ALARM - ReadThrottleEvents was 1e+300 in 1 min "
        "(threshold 1)"
    )
    errors = parsed({"NewStateReason": reason}, "webhook_errors_alarm")
    assert "failed 1e+300 times in 5 min" in compose(errors, Situation()).sms


def test_a_datapoint_too_long_to_be_a_measurement_is_unknown_and_the_reason_is_shown() -> None:
    reason = "[" + "9" * 61 + " (28/11/26 10:39:00)]"
    a = parsed({"AlarmDescription": "", "Trigger": {"Threshold": "high"}, "NewStateReason": reason})
    assert a.value is None and a.threshold is None
    assert compose(a, Situation()).sms == "failover-did: failover-did-RulesTableThrottles is in ALARM - " + reason


# --- messages that are no alarm -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Call +1 900 555 0199 now to keep your service",  # plain text
        '{"default": "hello"}',
        '{"AlarmName": "x", "NewStateValue": "EXPLODED"}',  # not a state CloudWatch has
        '{"AlarmName": "", "NewStateValue": "ALARM"}',
        '{"AlarmName": 7, "NewStateValue": "ALARM"}',
        "[1, 2, 3]",
        "",
        "{" * 100_000,  # deeper than the JSON reader recurses
    ],
)
def test_a_message_that_is_not_an_alarm_is_told_by_its_size_only(text: str) -> None:
    got = arrived(text)
    assert isinstance(got, NotAnAlarm)
    assert got.size == len(text.encode())
    assert got.message_id == "e195fb15-8be8-4825-f042-262484f1c74b"
    notice = not_an_alarm(got, NOW)
    assert notice.sms == (
        f"failover-did: a message that is not a CloudWatch alarm arrived on the alarm topic ({len(text.encode())} "
        f"byte{'' if len(text.encode()) == 1 else 's'}); see the log"
    )
    assert notice.about == "not-an-alarm" and notice.condition == "2026-11-28T10"
    assert "e195fb15-8be8-4825-f042-262484f1c74b" in notice.email
    for leaked in ("900 555", "hello", "EXPLODED", "[1, 2"):
        assert leaked not in notice.email + notice.sms + notice.subject
    check_sms_and_subject(notice.sms, notice.subject)


def test_a_record_without_an_sns_part_is_not_an_alarm() -> None:
    for record in ({}, {"Sns": "x"}, {"Sns": {"Message": 5}}, None, []):
        got = of_record(record)
        assert isinstance(got, NotAnAlarm) and got.size == 0 and got.message_id == ""


# --- text from the message stays on its line --------------------------------------------------------


def test_newlines_and_controls_in_name_and_description_are_folded_and_bounded() -> None:
    forged = "Throttles\r\nAlarm name: all clear\nIn the console: https://evil.example/\u2028\x1b[2J\u202eok"
    a = parsed({"AlarmName": forged, "AlarmDescription": "line one\n\nline two\t" + "x" * 5000})
    assert a.name == "Throttles Alarm name: all clear In the console: https://evil.example/ [2J ok"
    assert "\n" not in a.description and len(a.description) == 1024 and a.description.endswith("...")
    body = compose(a, Situation()).email
    lines = body.split("\n")
    assert body.splitlines() == lines[:-1]  # no other line separators either
    assert [line for line in lines if line.startswith("Alarm name: ")] == [f"Alarm name: {a.name}"]
    assert [line for line in lines if line.startswith("In the console: ")] == [
        "In the console: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/failover-did-RulesTableThrottles"
    ]
    assert lines[3].startswith("Description: line one line two x")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:cloudwatch:evil.example/#:123456789012:alarm:x",
        "arn:aws:cloudwatch:us-east-1.evil.example:123456789012:alarm:x",
        "arn:aws:sns:us-east-1:123456789012:alarm:x",
        "arn:aws:cloudwatch:us-east-1:1234:alarm:x",
        "",
    ],
)
def test_a_console_link_only_for_an_alarm_arn_of_cloudwatchs_shape(arn: str) -> None:
    a = parsed({"AlarmArn": arn})
    assert a.console_url is None
    assert "In the console" not in compose(a, Situation()).email


def test_the_console_link_quotes_the_alarm_name() -> None:
    a = parsed({"AlarmArn": "arn:aws:cloudwatch:eu-west-2:123456789012:alarm:a b/c?d#e"})
    assert a.console_url == (
        "https://eu-west-2.console.aws.amazon.com/cloudwatch/home?region=eu-west-2#alarmsV2:alarm/a%20b%2Fc%3Fd%23e"
    )


def test_times_no_clock_shows_are_not_believed() -> None:
    for when in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "yesterday", "2026-11-28T10" * 10):
        a = parsed({"StateChangeTime": when})
        assert a.changed_at == datetime(2026, 11, 28, 10, 40, 19, 555000, tzinfo=UTC)  # the SNS timestamp


# --- properties: anything at all ---------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_hostile_text = st.text(max_size=300) | st.sampled_from(["\n", "\r\n", "\u2028", "\x85", "\x0b", "Alarm name: x"]).map(
    lambda s: f"a{s}Alarm name: forged{s}In the console: https://evil.example/{s}"
)
_field = _json | _hostile_text
_FIELDS = ("AlarmName", "AlarmDescription", "NewStateReason", "Region", "AlarmArn", "StateChangeTime", "OldStateValue")


@st.composite
def alarm_like(draw: st.DrawFn) -> str:
    """An alarm notification with any of its fields replaced by anything."""
    body = message(draw(st.sampled_from(sorted(p.stem for p in ALARMS.glob("*.json")))))
    for name in draw(st.lists(st.sampled_from(_FIELDS), unique=True)):
        body[name] = draw(_field)
    for name in draw(st.lists(st.sampled_from(["Period", "Threshold", "Namespace", "MetricName"]), unique=True)):
        body["Trigger"][name] = draw(_field)
    if draw(st.booleans()):
        body["AlarmName"] = draw(_hostile_text)
    text = json.dumps(body)
    if draw(st.booleans()):
        text = text.replace('"Threshold": 1.0', '"Threshold": 1e400')
    return text


_bytes_as_text = st.binary(max_size=400).flatmap(
    lambda raw: st.sampled_from([raw.decode("utf-8", "surrogateescape"), raw.decode("latin-1")])
)


def _neutral(a: Alarm) -> Alarm:
    return replace(
        a,
        **{f: "x" for f in ("name", "description", "reason", "region") if getattr(a, f)},  # type: ignore[arg-type]
    )


@settings(max_examples=300, deadline=None)
@given(alarm_like() | _json.map(json.dumps) | _bytes_as_text | st.text(max_size=300))
def test_anything_on_the_topic_gives_one_sms_a_subject_and_an_email_without_forged_lines(text: str) -> None:
    got = arrived(text)
    if isinstance(got, NotAnAlarm):
        notice = not_an_alarm(got, NOW)
        check_sms_and_subject(notice.sms, notice.subject)
        assert one_line(text, 60) not in notice.email or len(one_line(text, 60)) < 12
        return
    notice = compose(got, Situation())
    check_sms_and_subject(notice.sms, notice.subject)
    body = notice.email
    assert body.splitlines() == body.split("\n")[:-1]
    # The message's text fills lines, it never makes them: the email has the lines of a plain alarm.
    plain = compose(_neutral(got), Situation()).email.split("\n")
    lines = body.split("\n")
    assert len(lines) == len(plain)
    for label in LABELS:
        assert [i for i, line in enumerate(lines) if line.startswith(label)] == [
            i for i, line in enumerate(plain) if line.startswith(label)
        ], label
    assert got.kind in Kind
