"""Numbers: every number with its status, cascade and each tier's health, and its missed calls today;
filtered by status and number prefix, paged. A handful of requests whatever the number of numbers: one
scan of the rules, one of the health table, one query of today's calls, one batched read of this
month's failover counts for the page shown (the reads `failover-did status` makes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from failover_did.status_view import STATUSES, NumberView, missed_today, number_view
from failover_did.store import failovers, health_store, rules_store
from failover_did_console.pages.paging import BadQuery, Paged, number_prefix, page_number, paged

PATH = "/console/numbers"


@dataclass(frozen=True)
class NumberRow:
    view: NumberView
    missed: list[str]  # "HH:MM caller", newest first
    failovers: int
    budget: int | None

    @property
    def number(self) -> str:
        return self.view.rule.number

    @property
    def status_class(self) -> str:
        return self.view.protection.status.lower().replace(" ", "-")


@dataclass(frozen=True)
class Listing:
    rows: list[NumberRow]
    page: Paged
    status: str
    q: str
    last_run: str | None
    statuses: Mapping[str, str]


def listing(query: Mapping[str, str], now: datetime) -> Listing:
    status = query.get("status", "").strip()
    if status and status not in STATUSES:
        raise BadQuery(f"status {status[:40]!r}: choose one of {', '.join(STATUSES.values())}")
    prefix = number_prefix(query)
    number = page_number(query)
    stored = sorted(
        (s.rule for s in rules_store.all_rules() if s.rule.number.startswith(prefix)), key=lambda r: r.number
    )
    health, last_run = health_store.health_and_last_run()
    by_target = {h.target: h for h in health}
    views = [number_view(rule, by_target) for rule in stored]
    if status:
        views = [v for v in views if v.protection.status == STATUSES[status]]
    shown, page = paged(views, number, PATH, {"status": status, "q": prefix})
    numbers = [v.rule.number for v in shown]
    counts = failovers.counts_this_month(numbers, now) if numbers else {}
    missed = missed_today(now) if numbers else {}
    rows = [
        NumberRow(v, missed.get(v.rule.number, []), counts.get(v.rule.number, 0), v.rule.monthly_failover_budget)
        for v in shown
    ]
    return Listing(rows, page, status, prefix, last_run, STATUSES)
