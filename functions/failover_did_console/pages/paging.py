"""Query-string filters shared by the list pages, checked before anything is read."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from urllib.parse import urlencode

T = TypeVar("T")
PAGE_SIZE = 50
MAX_PAGE = 100_000
_PREFIX = re.compile(r"\+?[0-9]{0,15}")
_NUMBER = re.compile(r"\+[1-9][0-9]{5,14}")


class BadQuery(ValueError):
    """A filter value the page cannot take; the message names it and says what it may be."""


def page_number(query: Mapping[str, str]) -> int:
    text = query.get("page", "1").strip() or "1"
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:7]) <= MAX_PAGE:
        raise BadQuery(f"page {text[:20]!r}: a page is a whole number from 1")
    return int(text)


def number_prefix(query: Mapping[str, str], name: str = "q") -> str:
    """A number prefix such as +1415 (the '+' may be left out); empty: every number."""
    text = query.get(name, "").strip()
    if not _PREFIX.fullmatch(text):
        raise BadQuery(f"{text[:40]!r}: search by the start of a number, digits with or without the '+' (e.g. +1415)")
    return text if not text or text.startswith("+") else f"+{text}"


def is_number(text: str) -> bool:
    return bool(_NUMBER.fullmatch(text))


@dataclass(frozen=True)
class Paged:
    """One page of rows and the links to its neighbours (None at either end)."""

    rows: Sequence[object]
    total: int
    number: int
    pages: int
    prev_url: str | None
    next_url: str | None


def paged(rows: Sequence[T], number: int, path: str, params: Mapping[str, str]) -> tuple[Sequence[T], Paged]:
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    start = (number - 1) * PAGE_SIZE
    shown = rows[start : start + PAGE_SIZE]
    kept = {k: v for k, v in params.items() if v}

    def link(n: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': str(n)})}"

    info = Paged(
        shown,
        len(rows),
        number,
        pages,
        link(number - 1) if number > 1 else None,
        link(number + 1) if number < pages else None,
    )
    return shown, info


def date_range(query: Mapping[str, str], now: datetime, default_days: int, max_days: int) -> tuple[datetime, datetime]:
    """[since, until) from the `from` and `to` dates (YYYY-MM-DD, UTC days, both included); `from` defaults
    to `default_days` ago, `to` to today, and the range reaches back at most `max_days` (what is kept)."""
    today = now.astimezone(UTC).date()
    first = _day(query, "from") or today - timedelta(days=default_days - 1)
    last = _day(query, "to") or today
    if first > last:
        raise BadQuery(f"from {first} is after to {last}: the first day comes first")
    oldest = today - timedelta(days=max_days - 1)
    since = datetime.combine(max(first, oldest), time.min, UTC)
    until = datetime.combine(last + timedelta(days=1), time.min, UTC)
    return since, until


def _day(query: Mapping[str, str], name: str) -> date | None:
    text = query.get(name, "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name} {text[:20]!r}: a day is written YYYY-MM-DD, e.g. 2026-11-28") from None
