"""One call as the call log keeps it: who called which number, what was tried, how it ended.

The call log (store) builds these from the webhooks of a call; the missed-call notices read them.
Pure values: no AWS, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class CallOutcome(StrEnum):
    IN_PROGRESS = "in-progress"  # no end seen yet
    ANSWERED = "answered"  # a tier took the call
    FINAL = "final"  # no tier took it; the caller heard the final message
    VOICEMAIL = "voicemail"  # no tier took it; the caller left a message
    CALLER_HUNG_UP = "caller-hung-up"  # the caller gave up while the cascade rang
    UNKNOWN_NUMBER = "unknown-number"  # the called number has no rule


MISSED = frozenset({CallOutcome.FINAL, CallOutcome.VOICEMAIL, CallOutcome.CALLER_HUNG_UP})


@dataclass(frozen=True)
class TierAttempt:
    """One dial of the cascade and how its leg ended."""

    hop: int  # 1 for the first dial of the call
    tier: int  # the rule's tier number; 0 is the primary
    target: str
    outcome: str = ""  # DialCallStatus (busy, no-answer, failed, completed, ...); empty while ringing
    sip_code: int | None = None


@dataclass(frozen=True)
class CallRecord:
    call_sid: str
    number: str  # the Twilio number called (E.164)
    caller: str  # From as Twilio gave it (may be "anonymous")
    started: datetime
    ended: datetime | None = None
    outcome: CallOutcome = CallOutcome.IN_PROGRESS
    answered_by: str | None = None  # the target that took the call
    ring_seconds: int | None = None  # how long the caller waited before hanging up / reaching final
    tiers: tuple[TierAttempt, ...] = field(default_factory=tuple)
    recording_url: str | None = None
    recording_seconds: int | None = None
    transcript: str | None = None
    test: bool = False  # made by `simulate` or `drill`: logged, never noticed

    @property
    def missed(self) -> bool:
        return self.outcome in MISSED
