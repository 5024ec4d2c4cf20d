"""What a probe's outcome means: the one table from a reply (or its absence) to a destination's state.

SIP OPTIONS replies (RFC 3261 §11.2: the code an INVITE would get). Any reply at all proves a live SIP
stack that Twilio can reach and dial, so only silence and the codes that say "unwell" are evidence:

| outcome                                                     | state    | why                                         |
| ----------------------------------------------------------- | -------- | ------------------------------------------- |
| 2xx                                                         | UP       | takes requests                              |
| 408, 5xx other than 501                                     | DOWN     | the server says it cannot serve             |
| 501 Not Implemented                                         | DEGRADED | alive; some gateways do not do OPTIONS      |
| 3xx, 401, 403, 404, 405, 407, 481, 486, other 4xx, 6xx      | DEGRADED | alive; a border controller may answer a     |
|   (603 Decline included)                                    |          | stranger 403 or 603; it is still dialed     |
| no answer within the timeout, refused, reset, closed        | DOWN     | nothing there                               |
| TLS handshake failure (not speaking TLS, no shared cipher)  | DOWN     | Twilio's TLS would fail the same way        |
| TLS certificate not trusted (with `tls_verify` on)          | DEGRADED | something answers TLS; whether Twilio       |
|                                                             |          | trusts that certificate we cannot know, and |
|                                                             |          | a failed check is no sign the PBX is down   |
| name does not exist / has no address (NXDOMAIN, no records) | DOWN     | Twilio could not reach it either            |

HTTP health URLs: 2xx UP; 5xx, no answer and transport failure DOWN; any other code (3xx, 4xx) DEGRADED
(something answers, but not as a health URL should; redirects are never followed).

UNKNOWN: the probe could not be made - the address is refused by the probing policy (`addresses.py`),
the target cannot be parsed or encoded, our own name lookup failed (timeout, SERVFAIL) or an unexpected
error happened while probing it. UNKNOWN is never evidence of anything: not of a failure, not of health.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one target.

    `state`: see the module's table. `reason`: the status code ("200", "503"), or "timeout", "refused",
    "reset", "dns", "tls", "certificate not trusted", "error: ..." for DOWN, and for UNKNOWN a sentence
    naming what could not be probed and why. `rtt_ms`: from sending the request (its first transmission
    over UDP) to the final answer; None without one. `address`: the "ip:port" probed, when one was chosen.
    """

    target: str
    state: State
    reason: str
    rtt_ms: float | None
    address: str | None = None


CERTIFICATE_NOT_TRUSTED = "certificate not trusted"


def classify_sip_status(code: int) -> State:
    """The state a final SIP reply `code` proves (see the module's table)."""
    if not 100 <= code <= 699:
        raise ValueError(f"{code} is not a SIP status code")
    if 200 <= code < 300:
        return State.UP
    if code == 408 or (500 <= code < 600 and code != 501):
        return State.DOWN
    return State.DEGRADED


def classify_http_status(code: int) -> State:
    """2xx up, 5xx down, anything else something answering that is not a healthy health URL."""
    if not 100 <= code <= 999:
        raise ValueError(f"{code} is not an HTTP status code")
    if 200 <= code < 300:
        return State.UP
    if 500 <= code < 600:
        return State.DOWN
    return State.DEGRADED
