"""Values in messages, and what a free-text field may hold.

A problem message quotes the value it is about; a hostile value must not make the message huge or
carry control characters to the operator's terminal, so `show` escapes and bounds it.
"""

from __future__ import annotations

MAX_SHOWN_CHARS = 80
# XML 1.0 allows tab, line feed and carriage return among the controls; spoken text needs no others.
_ORDINARY_CONTROLS = frozenset("\t\n\r")


def show(value: object) -> str:
    """A value as it would be quoted in the file, escaped and cut to about MAX_SHOWN_CHARS characters."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else _int_text(value)
        return text if len(text) <= MAX_SHOWN_CHARS else f"{text[: MAX_SHOWN_CHARS - 1]}…"
    return f"a {type(value).__name__}"


def kind(value: object) -> str:
    """What a YAML value is, in words."""
    names = {dict: "a mapping", list: "a list", str: "a text", bool: "true/false", int: "a number"}
    return names.get(type(value), "null" if value is None else f"a {type(value).__name__}")


def forbidden_character(text: str) -> tuple[int, str] | None:
    """The first character a free-text field may not hold, as (1-based position, what it is), or None.

    Refused: control characters other than tab, line feed and carriage return (C0, DEL, C1), lone
    surrogates, and Unicode noncharacters (U+FDD0..U+FDEF and the last two code points of every plane,
    U+FFFE and U+FFFF among them): none can be written in the XML that carries the text to Twilio, or
    they would reach a caller's ear as garbage.
    """
    for index, char in enumerate(text):
        point = ord(char)
        if char in _ORDINARY_CONTROLS:
            continue
        if point < 0x20 or 0x7F <= point <= 0x9F:
            return index + 1, f"U+{point:04X} (a control character)"
        if 0xD800 <= point <= 0xDFFF:
            return index + 1, f"U+{point:04X} (a lone surrogate, not a character)"
        if 0xFDD0 <= point <= 0xFDEF or (point & 0xFFFE) == 0xFFFE:
            return index + 1, f"U+{point:04X} (a Unicode noncharacter)"
    return None


def text_problem(text: str) -> str | None:
    """Why `text` may not be a free-text field's value, naming the character and where; None when it may."""
    found = forbidden_character(text)
    if found is None:
        return None
    position, what = found
    return f"{show(text)} has {what} at character {position}; write plain text without control characters"


def _quote(text: str) -> str:
    cut = len(text) > MAX_SHOWN_CHARS
    body = "".join(_escape(c) for c in (text[: MAX_SHOWN_CHARS - 1] if cut else text))
    return f'"{body}…" ({len(text):,} characters)' if cut else f'"{body}"'


def _escape(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    if char.isprintable():
        return char
    point = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    if point <= 0xFF:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def _int_text(value: int) -> str:
    if value.bit_length() > 256:  # beyond any limit in a rule; str() of a huge int is slow or refused
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    return str(value)
