"""Judging one destination value: accepted forms, normalisation, and emergency refusals."""

from __future__ import annotations

import phonenumbers
import pytest

from failover_did.rules.targets import LONGEST_EMERGENCY_NUMBER, TargetError, normalize_target, sip_host_of


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550111", "+14155550111"),
        ("+1 (415) 555-0111", "+14155550111"),
        ("  +1.415.555.0111 ", "+14155550111"),
        ("+442071838750", "+442071838750"),
        ("+44 20 7183 8750", "+442071838750"),
        ("+33 1 42 68 53 00", "+33142685300"),
        ("+49 30 901820", "+4930901820"),
        ("+61 2 9374 4000", "+61293744000"),
        ("sip:frontdesk@pbx.example.com", "sip:frontdesk@pbx.example.com"),
        ("sip:oncall@dr.example.net:5080;transport=tcp", "sip:oncall@dr.example.net:5080;transport=tcp"),
        ("sips:desk@pbx.example.com", "sips:desk@pbx.example.com"),
        ("sip:pbx.example.com", "sip:pbx.example.com"),
        ("sip:alice@[2001:db8::1]:5060", "sip:alice@[2001:db8::1]:5060"),
        # only the scheme is lower-cased, so Tier.is_sip sees it; the rest is kept as written
        ("SIP:FrontDesk@PBX.example.com", "sip:FrontDesk@PBX.example.com"),
        # a PBX extension or a full number in the user part is fine when it is not an emergency code
        ("sip:4155550111@pbx.example.com", "sip:4155550111@pbx.example.com"),
        ("sip:+14155550111@pbx.example.com", "sip:+14155550111@pbx.example.com"),
        ("sip:2000@pbx.example.com", "sip:2000@pbx.example.com"),
    ],
)
def test_accepted_targets_are_normalised(value: str, expected: str) -> None:
    assert normalize_target(value) == expected


@pytest.mark.parametrize(
    ("value", "country_hint"),
    [
        ("+1911", "US"),
        ("+1 911", "US"),
        ("+44999", "GB"),
        ("+44112", "GB"),
        ("+61000", "AU"),
        ("+49110", "DE"),
        ("+49112", "DE"),
        ("+81119", "JP"),
        ("+81110", "JP"),
        ("+33112", "FR"),
        ("+3317", "FR"),
        ("+86110", "CN"),
        ("+39113", "IT"),
        ("+112", "AT"),  # the European code, written with a '+'
        ("+911", "more regions"),
        ("+999", "more regions"),
    ],
)
def test_e164_emergency_numbers_are_refused_with_their_region(value: str, country_hint: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    message = str(err.value)
    assert "emergency" in message
    assert f'"{value}"' in message
    assert country_hint in message
    assert "not a valid" not in message  # reported as emergency, not merely as invalid


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("+1933", "933"),
        ("+1988", "988"),
        ("+1 988", "988"),
        ("+1211", "211"),
        ("+1311", "311"),
        ("+1411", "411"),
        ("+1511", "511"),
        ("+1611", "611"),
        ("+1711", "711"),
        ("+1811", "811"),
    ],
)
def test_nanp_special_codes_are_refused(value: str, what: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    assert "emergency" in str(err.value)
    assert what in str(err.value)
    assert f'"{value}"' in str(err.value)


def test_invalid_number_starting_with_an_emergency_code_is_called_emergency() -> None:
    with pytest.raises(TargetError, match="starts with an emergency number"):
        normalize_target("+1911123")
    with pytest.raises(TargetError, match="emergency"):
        normalize_target("+44 999 123")


@pytest.mark.parametrize(
    "value",
    [
        "sip:911@pbx.example.com",
        "sip:112@x.example.com",
        "sip:999@x.example.com",
        "sip:000@x.example.com",
        "sip:110@x.example.com",
        "sip:119@x.example.com",
        "sip:933@pbx.example.com",
        "sip:988@pbx.example.com",
        "sip:411@pbx.example.com",
        "sips:911@pbx.example.com",
        "sip:911@pbx.example.com;transport=tcp",
        "sip:%39%31%31@pbx.example.com",  # 911, percent-escaped
        "sip:+1911@pbx.example.com",
        "sip:+44999@pbx.example.com",
        "sip:sos@pbx.example.com",
        "sip:SOS@pbx.example.com",
        "sip:sos.fire@pbx.example.com",
    ],
)
def test_sip_targets_dialling_emergency_codes_are_refused(value: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    assert "emergency" in str(err.value)
    assert f'"{value}"' in str(err.value)


@pytest.mark.parametrize(
    "value", ["urn:service:sos", "URN:Service:SOS", "urn:service:sos.police", "urn:service:sos.ambulance"]
)
def test_sos_service_urns_are_refused(value: str) -> None:
    with pytest.raises(TargetError, match="emergency"):
        normalize_target(value)


@pytest.mark.parametrize("value", ["911", "112", "999", "000", " 9 1 1 ", "9-1-1", "988", "tel:911", "tel:+1911"])
def test_bare_and_tel_emergency_codes_are_refused(value: str) -> None:
    with pytest.raises(TargetError, match="emergency"):
        normalize_target(value)


@pytest.mark.parametrize(
    "value",
    [
        "+14155550111",
        "+442071838750",
        "+14159110000",  # 911 inside a real number is not 911
        "+12125559110",
        "+61299990000",
        "+4930110110",
        "sip:9110@pbx.example.com",
        "sip:1120@pbx.example.com",
        "sip:sosa@pbx.example.com",
        "sip:oncall@911.example.com",  # the host is not dialled
        "sip:100@pbx.example.com",  # common PBX extensions, though some country's emergency data lists them
        "sip:101@pbx.example.com",
        "sip:150@pbx.example.com",
        "sip:1301@pbx.example.com",
    ],
)
def test_close_calls_that_are_not_emergency_numbers_are_accepted(value: str) -> None:
    assert normalize_target(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("14155550100", "needs the leading '+' and country code"),
        ("(415) 555-0100", "needs the leading '+' and country code"),
        ("hello", "is neither an E.164 number (+ and country code) nor a sip:/sips: URI"),
        ("mailto:a@b.example", "is neither an E.164 number"),
        ("+", "is neither an E.164 number"),
        ("", "the target is empty"),
        ("+1415555011", "is not a valid phone number for country code +1"),
        ("+14155550111 ext 12", "no letters or extensions"),
        ("+1-800-FLOWERS", "no letters or extensions"),
        ("+999999999", "the country code is unknown"),
        ("sip:frontdesk@", "is not a valid SIP URI"),
        ("sip:a b@pbx.example.com", "is not a valid SIP URI"),
        ("sips:a@pbx.example.com;transport=udp", "is not a valid SIP URI"),
        ("tel:+14155550111", "is a tel: URI"),
        ("urn:service:counseling", "is a service URN"),
    ],
)
def test_refusals_say_why_and_name_the_value(value: str, reason: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    assert reason in str(err.value)
    if value:
        assert f'"{value.strip()}"' in str(err.value)
    assert "emergency" not in str(err.value)


def test_target_error_is_a_value_error() -> None:
    assert issubclass(TargetError, ValueError)


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("sip:frontdesk@PBX.Example.com", "pbx.example.com"),
        ("sips:desk@pbx.example.com:5061", "pbx.example.com"),
        ("sip:pbx.example.com;transport=tcp", "pbx.example.com"),
        ("sip:alice@[2001:DB8::1]", "2001:db8::1"),
        ("+14155550111", None),
    ],
)
def test_sip_host_of(target: str, host: str | None) -> None:
    assert sip_host_of(target) == host


def test_sip_host_of_a_malformed_sip_uri_raises() -> None:
    with pytest.raises(TargetError):
        sip_host_of("sip:frontdesk@")


@pytest.mark.parametrize(
    ("value", "code", "prefix"),
    [
        ("sip:9911@pbx.example.com", "911", "9"),
        ("sip:9112@pbx.example.com", "112", "9"),
        ("sip:0112@pbx.example.com", "112", "0"),
        ("sip:8112@pbx.example.com", "112", "8"),
        ("sip:99911@pbx.example.com", "911", "99"),
        ("sip:9,911@pbx.example.com", "911", "9"),
        ("sip:9w911@pbx.example.com", "911", "9"),
        ("sip:9,,p999@pbx.example.com", "999", "9"),
        ("sip:00112@pbx.example.com", "112", "00"),
        ("sip:9933@pbx.example.com", "933", "9"),
        ("sip:9988@pbx.example.com", "988", "9"),
        ("sip:0000@pbx.example.com", "000", "0"),  # Australia: 0 for an outside line, then 000
        ("sip:0110@pbx.example.com", "110", "0"),  # Germany, Japan, China: 0, then 110
        ("sip:0119@pbx.example.com", "119", "0"),
        ("sip:9-911@pbx.example.com", "911", "9"),
        ("sip:9911;phone-context=pbx@pbx.example.com", "911", "9"),
    ],
)
def test_emergency_codes_behind_an_outside_line_prefix_are_refused(value: str, code: str, prefix: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    assert str(err.value) == (
        f'"{value}" dials {code} after the outside-line prefix {prefix}, an emergency number in many countries; '
        "emergency calls must never go through failover rules"
    )


def test_1911_is_refused_as_the_long_distance_1_before_911() -> None:
    with pytest.raises(TargetError, match="dials 1 then 911, the North American emergency number"):
        normalize_target("sip:1911@pbx.example.com")


@pytest.mark.parametrize(
    "value",
    [
        "sip:9000@pbx.example.com",  # everyday extensions where 9 or 8 is the outside line
        "sip:8000@pbx.example.com",
        "sip:9110@pbx.example.com",
        "sip:9119@pbx.example.com",
        "sip:2911@pbx.example.com",  # no outside-line digit in front
        "sip:1000@pbx.example.com",
        "sip:1112@pbx.example.com",
        "sip:99110@pbx.example.com",
        "sip:9911x@pbx.example.com",
        "sip:09115@pbx.example.com",
        "sip:9,9110@pbx.example.com",
    ],
)
def test_extensions_that_only_look_like_a_prefixed_emergency_code_are_accepted(value: str) -> None:
    assert normalize_target(value) == value


def test_a_huge_target_is_refused_with_a_bounded_message() -> None:
    with pytest.raises(TargetError) as err:
        normalize_target("sip:" + "d" * 5000 + "@pbx.example.com")
    assert "is too long; a target is at most 1,024 characters" in str(err.value)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sip:desk@pbx\x0b.example.com", "no spaces, quotes or angle brackets"),
        ("sip:desk\x1b@pbx.example.com", "has characters a SIP URI does not allow"),
        ("sip:desk@pbx.exa\x9bmple.com", "non-ASCII characters and cannot be encoded"),
    ],
)
def test_control_characters_in_a_target_are_refused_and_shown_escaped(value: str, reason: str) -> None:
    with pytest.raises(TargetError) as err:
        normalize_target(value)
    assert reason in str(err.value)
    assert str(err.value).isprintable()


def test_no_emergency_number_is_longer_than_the_checks_assume() -> None:
    from phonenumbers.phonemetadata import PhoneMetadata

    lengths = [
        max(metadata.emergency.possible_length)
        for region in phonenumbers.SUPPORTED_SHORT_REGIONS
        if (metadata := PhoneMetadata.short_metadata_for_region(region)) is not None
        and metadata.emergency is not None
        and metadata.emergency.possible_length
    ]
    assert len(lengths) > 200 and max(lengths) == LONGEST_EMERGENCY_NUMBER
