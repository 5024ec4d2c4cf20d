"""The TwiML renderer: hidden callers get the business's number as caller ID; nothing XML forbids is emitted."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from failover_did.routing import DialTier, Finish
from failover_did.rules.model import Final, Tier
from failover_did.twiml import caller_id_for, render, say_and_hang_up, xml_safe

BUSINESS = "+14155550100"


@pytest.mark.parametrize(
    "caller",
    [
        "anonymous",
        "Anonymous",
        "+266696687",  # Twilio's placeholder for ANONYMOUS
        "+7378742833",  # ... for RESTRICTED
        "+0000000000",
        "+00000000000000",
        "+1",
        "+1415555",
        "+999999999999999",
        "client:alice",
        "sip:alice@pbx.example.com",
        "",
        "garbage",
        "+1415555\u0660\u0661\u0662\u0663",
    ],
)
def test_a_caller_that_is_not_a_valid_number_is_presented_as_the_business(caller: str) -> None:
    assert caller_id_for(caller, BUSINESS) == BUSINESS


@pytest.mark.parametrize("caller", ["+14155552671", "+442079460958", "+61491570156", "+4915123456789"])
def test_a_valid_caller_is_passed_through(caller: str) -> None:
    assert caller_id_for(caller, BUSINESS) is None


def test_no_business_number_means_no_caller_id_attribute() -> None:
    assert caller_id_for("anonymous", "") is None


def test_render_puts_the_substitute_on_the_dial() -> None:
    step = DialTier(0, Tier("+14155550111"), "primary", 1)
    hidden = ET.fromstring(render(step, base="https://h", caller="+266696687", called=BUSINESS)).find("Dial")
    shown = ET.fromstring(render(step, base="https://h", caller="+14155552671", called=BUSINESS)).find("Dial")
    assert hidden is not None and hidden.get("callerId") == BUSINESS
    assert shown is not None and shown.get("callerId") is None


@pytest.mark.parametrize("say", ["Closed\v\x1b now", "a\x00b\ud800c\uffff", "tab\tand\nnewline"])
def test_every_document_parses_whatever_the_stored_say_holds(say: str) -> None:
    finish = render(Finish(Final(say=say, voicemail=True), "x"), base="https://h", caller="", called=BUSINESS)
    for document in (finish, say_and_hang_up(say)):
        root = ET.fromstring(document)
        spoken = root.find("Say")
        assert spoken is not None and spoken.text == xml_safe(say)
        document.encode("utf-8")  # no lone surrogate either


def test_xml_safe_keeps_what_xml_allows() -> None:
    text = "tab\t LF\n CR\r é 🙂 \ue000 \ufffd"
    assert xml_safe(text) == text
    assert xml_safe("\x01\x08\x0b\x0c\x1f\ud800\ufffe\uffff") == " " * 8
    assert xml_safe("a&#0;b&#x1F;c&#55296;d&#65;e&#x1F642;f&#99999999;") == "a b c d&#65;e&#x1F642;f "


@pytest.mark.parametrize("test", [False, True])
def test_a_transcribed_voicemail_asks_twilio_for_the_text(test: bool) -> None:
    final = Final(say="Leave a message.", voicemail=True, transcribe=True)
    document = render(Finish(final, "x"), base="https://h/prod", caller="", called=BUSINESS, test=test)
    record = ET.fromstring(document).find("Record")
    assert record is not None and record.get("transcribe") == "true"
    expected = "https://h/prod/voice/transcription" + ("?test=1" if test else "")
    assert record.get("transcribeCallback") == expected
    assert record.get("recordingStatusCallback") == "https://h/prod/voice/recording" + ("?test=1" if test else "")


def test_a_voicemail_without_transcribe_asks_for_no_text() -> None:
    document = render(Finish(Final(say="Bye.", voicemail=True), "x"), base="https://h", caller="", called=BUSINESS)
    record = ET.fromstring(document).find("Record")
    assert record is not None and record.get("transcribe") is None and record.get("transcribeCallback") is None
