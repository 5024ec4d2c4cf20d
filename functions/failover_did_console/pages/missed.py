"""Missed calls: the call log's missed calls (caller, time, each tier tried and how it ended, the voicemail
link), newest first, filtered by number and days, paged. Test calls are left out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from failover_did.call_record import CallRecord
from failover_did.store import call_log
from failover_did_console.pages.paging import Paged, date_range, is_number, number_prefix, page_number, paged

PATH = "/console/missed"
DEFAULT_DAYS = 7
MAX_DAYS = 31  # one query per day of the by-day index
RECORDING_HOST = "https://api.twilio.com/"
OUTCOME_WORDS = {
    "voicemail": "left a voicemail",
    "final": "heard the final message",
    "caller-hung-up": "hung up while it rang",
}


@dataclass(frozen=True)
class MissedRow:
    call: CallRecord

    @property
    def time(self) -> str:
        return f"{self.call.started:%Y-%m-%d %H:%M:%S}"

    @property
    def outcome(self) -> str:
        words = OUTCOME_WORDS.get(self.call.outcome.value, self.call.outcome.value)
        ring = self.call.ring_seconds
        return (
            f"{words} (after {ring} s of ringing)"
            if ring is not None and self.call.outcome == "caller-hung-up"
            else words
        )

    @property
    def recording(self) -> str | None:
        """The voicemail's link, only when it is Twilio's (the log checked it when written; checked again)."""
        url = self.call.recording_url
        return url if url and url.startswith(RECORDING_HOST) else None


@dataclass(frozen=True)
class Missed:
    rows: list[MissedRow]
    page: Paged
    number: str
    since: datetime
    until: datetime


def missed(query: Mapping[str, str], now: datetime) -> Missed:
    number = number_prefix(query, "number")
    since, until = date_range(query, now, DEFAULT_DAYS, MAX_DAYS)
    page = page_number(query)
    upto = min(until, now + timedelta(seconds=1))
    calls = call_log.calls_of(number, since) if is_number(number) else call_log.all_calls(since, upto)
    wanted = [c for c in calls if c.missed and not c.test and c.number.startswith(number) and c.started < until]
    params = {"number": number, "from": f"{since:%Y-%m-%d}", "to": f"{until - timedelta(days=1):%Y-%m-%d}"}
    shown, info = paged(wanted, page, PATH, params)
    return Missed([MissedRow(c) for c in shown], info, number, since, until)
