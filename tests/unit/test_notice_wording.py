"""The words of missed-call notices: one GSM-7 SMS whatever the input, hidden callers named as such,
an email listing what was tried, a digest that counts every call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from failover_did.alerts.gsm import SMS_LIMIT, SUBJECT_LIMIT, septets
from failover_did.call_record import CallOutcome, CallRecord, TierAttempt
from failover_did.notices.wording import HIDDEN, Missed, caller, digest_notice, missed_notice

T0 = datetime(2026, 11, 28, 10, 2, tzinfo=UTC)


def call(**more: object) -> CallRecord:
    fields: dict[str, object] = {
        "call_sid": "CA1",
        "number": "+14155550100",
        "caller": "+14155550199",
        "started": T0,
        "ended": T0 + timedelta(seconds=70),
        "outcome": CallOutcome.FINAL,
        **more,
    }
    return CallRecord(**fields)  # type: ignore[arg-type]


def gsm_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


@pytest.mark.parametrize("raw", ["anonymous", "Anonymous", "restricted", "", "+266696687", "unknown"])
def test_withheld_numbers_are_a_hidden_caller(raw: str) -> None:
    assert caller(raw) == HIDDEN


def test_a_caller_is_formatted_and_text_from_outside_is_folded() -> None:
    assert caller("+442071838750") == "+44 20 7183 8750"
    assert "\n" not in caller("sip:evil\n@x")


@pytest.mark.parametrize(
    "more",
    [
        {"caller": "Ω" * 200 + "\u202e\n"},
        {"outcome": CallOutcome.VOICEMAIL, "recording_url": "https://x.example/" + "é" * 400, "recording_seconds": 9},
        {"outcome": CallOutcome.CALLER_HUNG_UP, "ring_seconds": 10**9},
        {"number": "+1" + "9" * 40},
    ],
)
def test_the_sms_is_one_gsm_segment_whatever_the_input(more: dict[str, object]) -> None:
    notice = missed_notice(call(**more), T0)
    assert septets(notice.sms) <= SMS_LIMIT and len(notice.sms) <= SMS_LIMIT and gsm_ascii(notice.sms)
    assert len(notice.subject) <= SUBJECT_LIMIT and gsm_ascii(notice.subject)


def test_the_email_says_what_was_tried_and_how_it_ended() -> None:
    tiers = (
        TierAttempt(1, 0, "sip:frontdesk@pbx.example.com", "failed", 503),
        TierAttempt(2, 1, "+14155550111", "busy"),
        TierAttempt(3, 2, "sip:oncall@dr.example.net", ""),
    )
    notice = missed_notice(call(outcome=CallOutcome.CALLER_HUNG_UP, ring_seconds=48, tiers=tiers), T0)
    assert notice.sms == "Missed call +1 415-555-0199 -> +1 415-555-0100 at 10:02Z: hung up after 48 s"
    assert notice.about == "missed-call"
    assert "- primary: sip:frontdesk@pbx.example.com: failed, SIP 503" in notice.email
    assert "- tier 1: +1 415-555-0111: busy" in notice.email
    assert "- tier 2: sip:oncall@dr.example.net: still ringing when the call ended" in notice.email
    assert "How:      the caller hung up after 48 s of ringing before anyone answered" in notice.email
    assert "Started:  2026-11-28 10:02Z" in notice.email


def test_a_voicemail_not_yet_fetched_says_so_and_a_transcript_is_included() -> None:
    notice = missed_notice(call(outcome=CallOutcome.VOICEMAIL, transcript="please\ncall back"), T0)
    assert "Recording: not yet known" in notice.email
    assert "Transcript (Twilio):\nplease call back" in notice.email
    assert notice.sms.endswith("voicemail ?")


def test_a_call_on_another_day_shows_its_date() -> None:
    assert " at 27 Nov 23:59Z: " in missed_notice(call(started=T0 - timedelta(hours=10, minutes=3)), T0).sms


def test_a_digest_counts_every_call_but_lists_a_bounded_few() -> None:
    calls = [
        Missed(f"CA{i}", f"+1415555{i:04d}", (T0 + timedelta(seconds=i)).isoformat(), "final message, no voicemail")
        for i in range(40)
    ]
    notice = digest_notice("+14155550100", calls[-20:], 500, T0.isoformat(), T0 + timedelta(minutes=5))
    assert notice.sms.startswith("500 more missed calls to +1 415-555-0100 since 10:02Z; last +1 415-555-0039")
    assert septets(notice.sms) <= SMS_LIMIT
    assert notice.email.count("\n- 2026") == 20
    assert "- ... and 480 more not listed here" in notice.email
