"""Fitting a text into one SMS: 160 septets of the GSM-7 alphabet, one billed segment."""

from __future__ import annotations

import re
import unicodedata

SMS_LIMIT = 160  # one GSM-7 segment
SUBJECT_LIMIT = 99  # SNS: ASCII, "less than 100 characters"
# "..." rather than "…": the ellipsis is not in the GSM-7 alphabet, and one such character turns the
# whole SMS into UCS-2, which splits a 160-character text into three billed segments.
ELLIPSIS = "..."

_GSM_EXTENSION = frozenset("^{}\\[~]|")  # two septets each in GSM-7
_REPLACEMENTS = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"}


def gsm_text(text: str) -> str:
    """`text` in printable ASCII, all of which GSM-7 can carry (so an SMS stays one 160-septet segment):
    accents dropped, typographic quotes and dashes made plain, anything else "?", whitespace collapsed."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", re.sub(r"\s+", " ", text)):
        if unicodedata.combining(ch):
            continue
        ch = _REPLACEMENTS.get(ch, ch)
        out.append(ch if " " <= ch <= "~" else "?")
    return "".join(out)


def septets(text: str) -> int:
    return sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)


def fit(text: str, limit: int = SMS_LIMIT, tail: str = "") -> str:
    """`text` + `tail` in at most `limit` septets (and characters): when too long, `text` is cut at a word
    boundary and ends in "..." while the (short) `tail`, such as "; +2 more", is kept."""
    text, tail = gsm_text(text), gsm_text(tail)
    if septets(text) + septets(tail) <= limit:
        return text + tail
    if septets(tail) > limit // 3:
        tail = ""
    room = limit - septets(tail) - len(ELLIPSIS)
    taken, used = [], 0
    for ch in text:
        used += septets(ch)
        if used > room:
            break
        taken.append(ch)
    cut = "".join(taken)
    space = cut.rfind(" ")
    if space > len(cut) - 16 and space > 0:
        cut = cut[:space]
    return cut.rstrip(" ;,:-(") + ELLIPSIS + tail
