"""The rules format's `notify:` recipients and `final.transcribe`: judged with a clear message naming the
value, and kept through storage."""

from __future__ import annotations

import pytest

from failover_did.rules.model import Notify, Rule
from failover_did.rules.validate import RulesError, parse_rules_yaml

HEAD = """numbers:
  "+14155550100":
    primary: {target: "+14155550111"}
"""


def problems(extra: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules_yaml(HEAD + extra)
    return caught.value.problems


def test_recipients_are_read_and_survive_storage() -> None:
    rules = parse_rules_yaml(
        HEAD + "    final: {voicemail: true, transcribe: true}\n"
        '    notify: {email: [Desk@Example.COM], sms: ["+1 415 555 0123"]}\n'
    )
    rule = rules["+14155550100"]
    assert rule.notify == Notify(("Desk@example.com",), ("+14155550123",))
    assert rule.final.transcribe is True
    assert Rule.from_doc(rule.number, rule.to_doc()) == rule


def test_no_notify_means_the_default_recipients() -> None:
    rule = parse_rules_yaml(HEAD)["+14155550100"]
    assert rule.notify is None and "notify" not in rule.to_doc()


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        ('{email: ["not an address"]}', 'notify.email[0]: "not an address" is not an email address'),
        ("{email: [a@b]}", 'notify.email[0]: "a@b" is not an email address'),
        ('{email: ["' + "a" * 250 + '@example.com"]}', "is not an email address"),
        ("{email: [a@example.com, a@EXAMPLE.com]}", 'notify.email[1]: "a@EXAMPLE.com" is listed twice'),
        ("{sms: [14155550123]}", "notify.sms[0]: 14155550123 was read as a number, not text"),
        ('{sms: ["sip:desk@pbx.example.com"]}', "must be a phone number in E.164 form"),
        ('{sms: ["+1415"]}', 'notify.sms[0]: "+1415" is not a valid phone number'),
        ("{email: a@example.com}", "notify.email: must be a list, not a text"),
        ("{}", "notify: names nobody"),
        ("{emails: [a@example.com]}", 'notify: unknown key "emails"'),
        ("[a@example.com]", "notify: must be a mapping"),
        ("{sms: [" + ", ".join(f'"+1415555{i:04d}"' for i in range(11)) + "]}", "at most 10 are allowed"),
    ],
)
def test_bad_recipients_are_named(notify: str, expected: str) -> None:
    found = problems(f"    notify: {notify}\n")
    assert any(expected in p for p in found), found


def test_transcribe_needs_a_voicemail_and_a_boolean() -> None:
    assert any("final.transcribe: true needs voicemail: true" in p for p in problems("    final: {transcribe: true}\n"))
    assert any(
        'final.transcribe: "yes" must be true or false' in p
        for p in problems('    final: {voicemail: true, transcribe: "yes"}\n')
    )
