"""The static fallback cascade: one TwiML document that dials every tier in order with no help from our API."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from failover_did.fallback import after_tier, servable, static_cascade
from failover_did.rules.model import Final, Rule, Tier
from failover_did_cli.callsim import parse_reply

RULE = Rule(
    number="+14155550100",
    tiers=(
        Tier("sip:frontdesk@pbx.example.com;transport=tls", timeout=15),
        Tier("+14155550111", timeout=20, screen=True),
        Tier("sips:oncall@dr.example.net:5061", timeout=45, health="https://dr.example.net/health"),
    ),
    triggers=frozenset({"503"}),
    final=Final(say="Sorry & goodbye <for now>.", voicemail=True),
)


def root_of(rule: Rule = RULE) -> ET.Element:
    return ET.fromstring(static_cascade(rule))


def test_root_is_response_and_parses_as_twiml() -> None:
    document = static_cascade(RULE)
    assert document.startswith("<?xml")
    root = ET.fromstring(document)
    assert root.tag == "Response"
    reply = parse_reply(200, document)
    assert reply.dial is not None and reply.dial.targets == ("sip:frontdesk@pbx.example.com;transport=tls",)


def test_dials_every_tier_in_order_with_its_timeout() -> None:
    dials = root_of().findall("Dial")
    assert [[(n.tag, n.text) for n in d] for d in dials] == [
        [("Sip", "sip:frontdesk@pbx.example.com;transport=tls")],
        [("Number", "+14155550111")],
        [("Sip", "sips:oncall@dr.example.net:5061")],
    ]
    assert [d.get("timeout") for d in dials] == ["15", "20", "45"]
    assert all(d.get("answerOnBridge") == "true" for d in dials)


def test_no_dial_has_an_action_url_and_no_noun_a_screening_url() -> None:
    root = root_of()
    for dial in root.iter("Dial"):
        assert set(dial.attrib) == {"timeout", "answerOnBridge"}
        for noun in dial:
            assert noun.attrib == {}
    assert not any("http" in (element.get(name) or "") for element in root.iter() for name in element.attrib)


def test_ends_with_the_final_message_and_hangup_without_voicemail() -> None:
    verbs = list(root_of())
    assert [v.tag for v in verbs] == ["Dial", "Dial", "Dial", "Say", "Hangup"]
    assert verbs[3].text == "Sorry & goodbye <for now>."
    assert root_of().find("Record") is None


def test_triggers_are_ignored_every_tier_is_tried() -> None:
    other = Rule(RULE.number, RULE.tiers, triggers=frozenset({"busy"}), final=RULE.final)
    assert static_cascade(other) == static_cascade(RULE)


def test_primary_only_rule_dials_it_then_says_the_default_final() -> None:
    rule = Rule("+14155550200", (Tier("+14155550222"),))
    verbs = list(root_of(rule))
    assert [v.tag for v in verbs] == ["Dial", "Say", "Hangup"]
    assert verbs[0].get("timeout") == "20" and verbs[0][0].tag == "Number"
    assert verbs[1].text == Final().say


CONTROL_SAY = "Sorry\v we are \x1b closed\x00\ufffe."


def test_a_say_with_characters_xml_forbids_still_makes_a_document() -> None:
    rule = Rule(RULE.number, RULE.tiers, final=Final(say=CONTROL_SAY))
    document = static_cascade(rule)
    assert ET.fromstring(document).find("Say") is not None  # parses: each forbidden character became a space
    assert not any(c in document for c in "\v\x1b\x00\ufffe")
    assert [v.tag for v in ET.fromstring(after_tier(document, 1))] == ["Dial", "Say", "Hangup"]


@pytest.mark.parametrize(
    "document",
    ["", "not xml", "<Response><Dial>", "<Other/>", '<?xml version="1.0"?><Response><Say>a &bogus; b</Say></Response>'],
)
def test_a_corrupt_stored_document_is_not_servable(document: str) -> None:
    assert servable(document) is None


def test_a_stored_document_with_forbidden_characters_is_served_cleaned() -> None:
    cleaned = servable("<Response><Say>a\x0bb</Say></Response>")
    assert cleaned == "<Response><Say>a b</Say></Response>"
