"""What a destination's host name may look like: ASCII letters, digits and hyphens in dot-separated
labels of 1 to 63 characters, 253 in all (RFC 1035), with international names written in their
`xn--` form. Twilio dials and the prober resolves exactly the text of the rule, so a name they could not
encode is refused when the rule is written, not discovered on a failing call.

Pure text checks: nothing is resolved here.
"""

from __future__ import annotations

import re

MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
_LDH_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")


def host_problem(host: str) -> str | None:
    """Why `host` (a name, not a bracketed IPv6 address) is not a usable host name, or None when it is."""
    if not host:
        return "the host is empty"
    if not host.isascii():
        return _non_ascii_problem(host)
    name = host[:-1] if host.endswith(".") else host  # a trailing dot: the name is fully qualified
    if len(name) > MAX_HOST_CHARS:
        return f"the host is {len(name)} characters long; at most {MAX_HOST_CHARS} are allowed"
    for label in name.split("."):
        if not label:
            return "the host has an empty label (two dots in a row, or a dot at the start)"
        if len(label) > MAX_LABEL_CHARS:
            return f"the host's label {_cut(label)} is {len(label)} characters long; at most {MAX_LABEL_CHARS}"
        if not _LDH_LABEL.match(label):
            return (
                f"the host's label {label!r} may hold only letters, digits and inner hyphens "
                "(no underscores, spaces or other characters)"
            )
        if label.lower().startswith("xn--") and not _is_valid_a_label(label):
            return f"the host's label {label!r} is not a valid international (xn--) name"
    return None


def _non_ascii_problem(host: str) -> str:
    try:
        ascii_form = host.encode("idna").decode("ascii")
    except UnicodeError:
        return (
            "the host has non-ASCII characters and cannot be encoded as an international domain name (IDNA): "
            "a label is empty, too long or holds characters a host name cannot"
        )
    return f"the host has non-ASCII characters; write it in its ASCII (IDNA) form {ascii_form}"


def _is_valid_a_label(label: str) -> bool:
    try:
        decoded = label.encode("ascii").decode("idna")
        return decoded.encode("idna").decode("ascii").lower() == label.lower()
    except UnicodeError:
        return False


def _cut(label: str) -> str:
    return repr(label if len(label) <= 20 else label[:20] + "…")
