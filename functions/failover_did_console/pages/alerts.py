"""Alerts: the event log (failovers, destinations unreachable and recovered, rule changes, ...) filtered by
number, kind and days, newest first, paged. One query for a whole number, else one scan of the days asked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from failover_did.event_words import KINDS, describe
from failover_did.store import events as event_store
from failover_did.store.events import Event, retention_days
from failover_did_console.pages.paging import BadQuery, Paged, date_range, is_number, number_prefix, page_number, paged

PATH = "/console/alerts"
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class AlertRow:
    event: Event
    words: str

    @property
    def time(self) -> str:
        return self.event.at.replace("T", " ")[:19]


@dataclass(frozen=True)
class Alerts:
    rows: list[AlertRow]
    page: Paged
    number: str
    kind: str
    since: datetime
    until: datetime
    kinds: tuple[str, ...] = KINDS


def alerts(query: Mapping[str, str], now: datetime) -> Alerts:
    number = number_prefix(query, "number")
    kind = query.get("kind", "").strip()
    if kind and kind not in KINDS:
        raise BadQuery(f"kind {kind[:40]!r}: choose one of {', '.join(KINDS)}")
    since, until = date_range(query, now, DEFAULT_DAYS, retention_days())
    page = page_number(query)
    found = event_store.events_of(number, since) if is_number(number) else event_store.all_events(since, kind or None)
    wanted = [
        e
        for e in found
        if e.number.startswith(number) and (not kind or e.kind == kind) and e.at < event_store.iso(until)
    ]
    wanted.sort(key=lambda e: (e.at, e.number), reverse=True)
    params = {
        "number": number,
        "kind": kind,
        "from": f"{since:%Y-%m-%d}",
        "to": f"{until - timedelta(days=1):%Y-%m-%d}",
    }
    shown, info = paged(wanted, page, PATH, params)
    rows = [AlertRow(e, describe(e.kind, e.detail)) for e in shown]
    return Alerts(rows, info, number, kind, since, until)
