"""Judging a number's `notify:` recipients (who is told of its missed calls): email addresses and E.164
numbers, bounded and without repeats. Used by `rules.validate`."""

from __future__ import annotations

import re
from collections.abc import Callable

from failover_did.rules.model import Notify
from failover_did.rules.targets import TargetError, normalize_target
from failover_did.rules.text import kind, show

NOTIFY_KEYS = ("email", "sms")
MAX_RECIPIENTS = 10  # per kind and number
MAX_EMAIL_CHARS = 254
# local@domain: a plain local part and a domain of letter-digit-hyphen labels with a dot; no quoting,
# comments or address literals (SNS and people's mail clients want an ordinary address).
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
EXAMPLE = '{email: [ops@example.com], sms: ["+14155550123"]}'
_E164_HINT = 'must be a phone number in E.164 form in quotes, e.g. "+14155550123"'


def judge_notify(where: str, value: object, problems: list[str]) -> Notify | None:
    """The recipients of `value` (None when absent), appending each problem to `problems`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a mapping like {EXAMPLE}, not {kind(value)}")
        return None
    for key in value:
        if key not in NOTIFY_KEYS:
            problems.append(f"{where}: unknown key {show(key)}; allowed keys: {', '.join(NOTIFY_KEYS)}")
    email = _recipients(f"{where}.email", value.get("email"), _email, problems)
    sms = _recipients(f"{where}.sms", value.get("sms"), _sms, problems)
    if value.get("email") in (None, []) and value.get("sms") in (None, []):
        problems.append(f"{where}: names nobody; list an email or sms recipient, or leave notify out")
    return Notify(tuple(email), tuple(sms))


def _recipients(
    where: str, value: object, judge: Callable[[str, object, list[str]], str | None], problems: list[str]
) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list, not {kind(value)}")
        return []
    if len(value) > MAX_RECIPIENTS:
        problems.append(f"{where}: {len(value)} recipients; at most {MAX_RECIPIENTS} are allowed")
        return []
    kept: list[str] = []
    for i, item in enumerate(value):
        recipient = judge(f"{where}[{i}]", item, problems)
        if recipient is None:
            continue
        if recipient in kept:
            problems.append(f"{where}[{i}]: {show(item)} is listed twice")
            continue
        kept.append(recipient)
    return kept


def _email(where: str, value: object, problems: list[str]) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not isinstance(value, str) or len(text) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(text):
        problems.append(
            f"{where}: {show(value)} is not an email address like ops@example.com "
            f"(at most {MAX_EMAIL_CHARS} characters)"
        )
        return None
    local, _, domain = text.partition("@")
    return f"{local}@{domain.lower()}"


def _sms(where: str, value: object, problems: list[str]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        problems.append(f"{where}: {value} was read as a number, not text; {_E164_HINT}")
        return None
    if not isinstance(value, str) or not value.strip().startswith("+"):
        problems.append(f"{where}: {show(value)} {_E164_HINT}")
        return None
    try:
        number = normalize_target(value)
    except TargetError as exc:
        problems.append(f"{where}: {exc}")
        return None
    return number
