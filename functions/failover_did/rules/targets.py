"""Judging one destination value: an E.164 phone number or a SIP URI, and never an emergency number.

Used by `rules.validate` only (operator tooling), so importing `phonenumbers` at the top is fine.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

import phonenumbers

from failover_did.rules.text import show
from failover_did.sipuri import MAX_URI_CHARS, SipUriError, host_of, parse_sip_uri

# The North American codes libphonenumber does not flag: 933 (the 911 address test line), 988 (the
# crisis line) and the N11 service codes (211 community services ... 911 emergency).
NANP_SPECIAL_CODES: dict[str, str] = {
    "933": "933, the US 911 address test line",
    "988": "988, the US suicide and crisis line",
    **{f"{n}11": f"{n}11, a North American N11 service code" for n in range(2, 10)},
}
# Emergency dial strings in wide use (112 across Europe and GSM, 911 in the Americas, 999 UK and
# Commonwealth, 000 Australia, 110/119/118 East Asia and Europe, 08 mobile networks).
WIDESPREAD_EMERGENCY_CODES = frozenset({"000", "08", "110", "112", "118", "119", "911", "999"})
# A PBX user part is often dialled through an outside-line prefix (9 or 8 in North America and the UK,
# 0 in most of Europe, Australia and East Asia, 00 and 99 on some systems), perhaps with a pause
# (`,`, `w`, `p`). Behind any of them these codes are refused; the other emergency codes only behind
# 0 or 00, because 9000, 8000 or 9110 are everyday extensions where 9 is the outside line.
OUTSIDE_LINE_PREFIXES = ("00", "99", "0", "8", "9")
EMERGENCY_AFTER_ANY_PREFIX = frozenset({"911", "112", "999", "933", "988"})
EMERGENCY_AFTER_ZERO_PREFIX = WIDESPREAD_EMERGENCY_CODES
_PAUSES = ",wWpP"
_NEVER = "emergency calls must never go through failover rules"
# No region's emergency number in libphonenumber's data is longer (tests/unit/test_targets.py derives it),
# so a longer digit string is never one exactly: its many per-region checks can be skipped.
LONGEST_EMERGENCY_NUMBER = 6
# '+' then ASCII digits and the usual visual separators; no letters (phonenumbers would turn
# "+1 415 555 0111 foo" into digits) and no extensions.
_E164_TEXT = re.compile(r"^\+[0-9 ().\-/]+$")
_DIGITS_TEXT = re.compile(r"^[0-9 ().\-/]+$")
_SOS = re.compile(r"^sos(\..*)?$", re.IGNORECASE)


class TargetError(ValueError):
    """A destination value is refused; the message is the human reason."""


def normalize_target(value: str) -> str:
    """Return the canonical form of a destination (E.164 number or SIP URI); raise TargetError if refused."""
    text = value.strip()
    shown = show(text)
    if not text:
        raise TargetError("the target is empty; give an E.164 number (+ and country code) or a sip:/sips: URI")
    if len(text) > MAX_URI_CHARS:
        raise TargetError(f"{shown} is too long; a target is at most {MAX_URI_CHARS:,} characters")
    lowered = text.lower()
    if lowered.startswith("urn:service:"):
        if _SOS.match(lowered.removeprefix("urn:service:")):
            raise TargetError(f"{shown} is an emergency service URN; {_NEVER}")
        raise TargetError(f"{shown} is a service URN; give an E.164 number or a sip:/sips: URI")
    if lowered.startswith(("sip:", "sips:")):
        return _normalize_sip(text, shown)
    if lowered.startswith("tel:"):
        _check_dialled_emergency(text[4:].split(";", 1)[0].strip(), shown)
        raise TargetError(f"{shown} is a tel: URI; write just the number in E.164 form, e.g. +14155550100")
    if text.startswith("+") and any(c.isdigit() for c in text):
        return _normalize_e164(text, shown)
    if _DIGITS_TEXT.match(text) and any(c.isdigit() for c in text):
        _check_digits_emergency(text, shown)
        raise TargetError(f"{shown} needs the leading '+' and country code (E.164), e.g. +14155550100")
    raise TargetError(f"{shown} is neither an E.164 number (+ and country code) nor a sip:/sips: URI")


def sip_host_of(target: str) -> str | None:
    """The lower-cased host of a SIP target; None for a phone number."""
    try:
        return host_of(target)
    except SipUriError as exc:
        raise TargetError(f"{show(target)} is not a valid SIP URI: {exc}") from None


def _normalize_sip(text: str, shown: str) -> str:
    try:
        uri = parse_sip_uri(text)
    except SipUriError as exc:
        raise TargetError(f"{shown} is not a valid SIP URI: {exc}") from None
    if uri.user is not None:
        user = unquote(uri.user).split(";", 1)[0]
        if _SOS.match(user):
            raise TargetError(f"{shown} calls the emergency service user {user!r}; {_NEVER}")
        _check_sip_user_emergency(user, shown)
    # Only the scheme is lower-cased: the rest of a SIP URI is kept exactly as written, and
    # Tier.is_sip looks for a lower-case "sip:"/"sips:".
    scheme, _, rest = text.partition(":")
    return f"{scheme.lower()}:{rest}"


def _normalize_e164(text: str, shown: str) -> str:
    if not _E164_TEXT.match(text):
        raise TargetError(
            f"{shown} is not an E.164 number: after the '+' only digits, spaces, dots, dashes and "
            "parentheses are allowed (no letters or extensions)"
        )
    _check_e164_emergency(text, shown)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise TargetError(f"{shown} is not a phone number: {_parse_reason(exc)}") from None
    if not phonenumbers.is_valid_number(number):
        raise TargetError(f"{shown} is not a valid phone number for country code +{number.country_code}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _check_dialled_emergency(text: str, shown: str) -> None:
    """Refuse a SIP user part or tel: number that is an emergency number, with or without a '+'."""
    if _E164_TEXT.match(text):
        _check_e164_emergency(text, shown)
    else:
        _check_digits_emergency(text, shown)


def _check_sip_user_emergency(user: str, shown: str) -> None:
    """Refuse a SIP user part that a PBX would dial as an emergency or N11 number. A PBX's dial plan has
    no country we can know, and libphonenumber's data for all regions together covers most 3-digit
    strings (100-199 among them, common extensions), so bare digits are checked against the dial strings
    used for emergencies almost everywhere; '+...' users get the full E.164 check."""
    if _E164_TEXT.match(user):
        _check_e164_emergency(user, shown)
        return
    digits = "".join(c for c in user if not c.isspace() and c not in "().-/")
    _check_outside_line_emergency(digits, shown)
    if digits in WIDESPREAD_EMERGENCY_CODES:
        raise TargetError(f"{shown} dials {digits}, an emergency number in many countries; {_NEVER}")
    if digits in NANP_SPECIAL_CODES:
        raise TargetError(
            f"{shown} dials {NANP_SPECIAL_CODES[digits]}; these and emergency numbers must never go "
            "through failover rules"
        )


def _check_outside_line_emergency(dialled: str, shown: str) -> None:
    """Refuse a user part that is an emergency code behind an outside-line prefix (9911, 9,112, 0110)."""
    if dialled == "1911":  # the North American long-distance 1 before 911 reaches 911 on many switches
        raise TargetError(f"{shown} dials 1 then 911, the North American emergency number; {_NEVER}")
    for prefix in OUTSIDE_LINE_PREFIXES:
        if not dialled.startswith(prefix):
            continue
        code = dialled[len(prefix) :].lstrip(_PAUSES)
        codes = EMERGENCY_AFTER_ZERO_PREFIX if prefix in ("0", "00") else EMERGENCY_AFTER_ANY_PREFIX
        if code in codes:
            raise TargetError(
                f"{shown} dials {code} after the outside-line prefix {prefix}, an emergency number in many "
                f"countries; {_NEVER}"
            )


def _check_e164_emergency(text: str, shown: str) -> None:
    """Refuse '+...' text that is or dials an emergency number; checked before validity on purpose."""
    digits = "".join(c for c in text if c.isdigit())
    # "+112", "+911", "+999": an emergency code with a '+' in front is what the user meant.
    if regions := _emergency_regions(digits):
        raise TargetError(f"{shown} is an emergency number ({digits} in {_regions_text(regions)}); {_NEVER}")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return  # not a number at all; the caller reports that
    national = phonenumbers.national_significant_number(number)
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    short = len(national) <= LONGEST_EMERGENCY_NUMBER
    exact = [r for r in regions if short and phonenumbers.is_emergency_number(national, r)]
    if exact:
        raise TargetError(f"{shown} is an emergency number ({national} in {_regions_text(exact)}); {_NEVER}")
    if number.country_code == 1 and national in NANP_SPECIAL_CODES:
        raise TargetError(
            f"{shown} is {NANP_SPECIAL_CODES[national]}; these and emergency numbers must never go "
            "through failover rules"
        )
    # A valid subscriber number may start with emergency digits (Sapporo's area code 11 + 0...);
    # an invalid one that does is most likely an emergency number with digits appended.
    if not phonenumbers.is_valid_number(number):
        prefix = [r for r in regions if phonenumbers.connects_to_emergency_number(national, r)]
        if prefix:
            raise TargetError(
                f"{shown} is not a valid number and starts with an emergency number of "
                f"{_regions_text(prefix)}; {_NEVER}"
            )


def _check_digits_emergency(text: str, shown: str) -> None:
    """Refuse a bare digit string (no '+') that is an emergency or NANP special code anywhere."""
    digits = "".join(c for c in text if not c.isspace() and c not in "().-/")
    if not digits.isascii() or not digits.isdigit():
        return
    if regions := _emergency_regions(digits):
        where = _regions_text(regions)
        raise TargetError(f"{shown} dials {digits}, an emergency number in {where}; {_NEVER}")
    if digits in NANP_SPECIAL_CODES:
        raise TargetError(
            f"{shown} dials {NANP_SPECIAL_CODES[digits]}; these and emergency numbers must never go "
            "through failover rules"
        )


@lru_cache(maxsize=1024)
def _emergency_regions(digits: str) -> tuple[str, ...]:
    """The regions whose libphonenumber short-number data lists `digits` (exactly) as an emergency number."""
    if not digits or not digits.isdigit() or len(digits) > LONGEST_EMERGENCY_NUMBER:
        return ()
    return tuple(sorted(r for r in phonenumbers.SUPPORTED_SHORT_REGIONS if phonenumbers.is_emergency_number(digits, r)))


def _regions_text(regions: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(regions[:5])
    return f"{shown} and {len(regions) - 5} more regions" if len(regions) > 5 else shown


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "the country code is unknown",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "it is too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
        phonenumbers.NumberParseException.TOO_LONG: "it is too long",
    }
    return reasons.get(exc.error_type, "it does not look like a phone number")
