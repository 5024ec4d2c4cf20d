"""Plain-words helpers shared by every notice: numbers, destinations, tiers, times, counts, and folding
text from outside (an alarm's name, a reason) onto one bounded line."""

from __future__ import annotations

import importlib
import ipaddress
import math
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

try:  # the page must go out even if a build left phonenumbers out: numbers are then shown as E.164
    _phonenumbers: Any = importlib.import_module("phonenumbers")
except ImportError:  # pragma: no cover - phonenumbers is a dependency of the project
    _phonenumbers = None

UNKNOWN = "unknown"
_FOLDED = re.compile(r"\s+")
_TIME_TEXT = 64  # longer than any ISO time: not parsed at all
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def one_line(text: object, limit: int = 500) -> str:
    """`text` on one line of at most `limit` characters: control and format characters, line and paragraph
    separators and runs of whitespace become one space, so text from outside cannot start a line of its own
    (nor reorder one, as U+202E would)."""
    raw = text if isinstance(text, str) else "" if text is None else str(text)
    raw = raw[: limit * 4]  # folding never needs more than this
    kept = "".join(" " if _breaks_lines(ch) else ch for ch in raw)
    folded = _FOLDED.sub(" ", kept).strip()
    if len(folded) <= limit:
        return folded
    return folded[: max(limit - 3, 0)].rstrip() + "..."


def _breaks_lines(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")


def human_number(text: str) -> str:
    """An E.164 number as people write it ("+1 415-555-0100"); anything else unchanged."""
    if not text.startswith("+") or len(text) > 32 or _phonenumbers is None:
        return text
    try:
        parsed = _phonenumbers.parse(text, None)
    except Exception:  # phonenumbers.NumberParseException; show what we have
        return text
    return str(_phonenumbers.format_number(parsed, _phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def full_target(target: str) -> str:
    """A destination in full: numbers formatted, SIP URIs and URLs as written."""
    return human_number(target)


def short_target(target: str) -> str:
    """A destination for an SMS: "sip:frontdesk@pbx" for sip:frontdesk@pbx.example.com:5060;transport=tcp
    (host names cut to their first label, IP addresses kept whole), "pbx" for an http(s) health URL."""
    scheme, sep, rest = target.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        rest = rest.split(";", 1)[0].split("?", 1)[0]
        user, at, hostport = rest.rpartition("@")
        host = _short_host(hostport)
        return f"{scheme}:{user}@{host}" if at else f"{scheme}:{host}"
    if sep and scheme.lower() in ("http", "https"):
        try:
            netloc = urlsplit(target).netloc
        except ValueError:  # a malformed bracketed host
            return target
        return _short_host(netloc.rpartition("@")[2])
    return human_number(target)


def _short_host(hostport: str) -> str:
    if hostport.startswith("["):  # [IPv6]:port
        return hostport.split("]", 1)[0] + "]"
    host = hostport.split(":", 1)[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.split(".", 1)[0] or host
    return host


def tier_name(index: int) -> str:
    return "primary" if index == 0 else f"tier {index}"


def parse_time(value: object) -> datetime | None:
    """An ISO time in UTC (no zone: UTC); None for anything else, including times no clock will show."""
    if not isinstance(value, str) or not value or len(value) > _TIME_TEXT:
        return None
    try:
        at = datetime.fromisoformat(value)
        at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return at if _EARLIEST <= at < _LATEST else None


def clock(when: str | datetime | None, ref: datetime) -> str:
    """ "10:02Z", or "27 Nov 10:02Z" when not on the reference day (both UTC)."""
    at = parse_time(when) if not isinstance(when, datetime) else when
    if at is None:
        return "?"
    at = at.astimezone(UTC)
    if at.date() == ref.astimezone(UTC).date():
        return f"{at:%H:%M}Z"
    return f"{at.day} {at:%b %H:%M}Z"


def stamp(when: str | datetime | None) -> str:
    at = parse_time(when) if not isinstance(when, datetime) else when
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}Z" if at else "?"


def span(seconds: int | None) -> str:
    """A period for people: "5 min", "1 h", "90 s"; "unknown" when CloudWatch did not say (or said nonsense)."""
    if seconds is None or seconds <= 0:
        return UNKNOWN
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def within(seconds: int | None) -> str:
    """ "in 5 min", or "(period unknown)"."""
    return f"in {span(seconds)}" if seconds and seconds > 0 else "(period unknown)"


def quantity(value: float | None) -> str:
    """A measured value as people read it: "3", "0.5", "1.2e+20"; "unknown" when there is none."""
    if value is None or not math.isfinite(value):
        return UNKNOWN
    return f"{value:g}"


def count(value: float | None, noun: str, plural: str | None = None) -> str:
    """ "3 calls", "1 call"."""
    if value is not None and math.isfinite(value) and abs(value) < 1e12:
        n = round(value)
        return f"{n} {noun if n == 1 else plural or noun + 's'}"
    return f"{quantity(value)} {plural or noun + 's'}"


def as_int(value: object) -> int:
    """A tier index or count from a stored detail; 0 when it is not a small whole number."""
    text = str(value)
    if len(text) > 18:
        return 0
    try:
        return int(text)
    except ValueError:
        return 0
