"""What the alarm notices say beside the alarm itself: the down destinations, those the prober cannot reach,
the rules that use them, the recent events and the monthly failover counts, read from DynamoDB. A part that
cannot be read is named in `Situation.unread`, never raised: the page goes out with that detail left out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from failover_did.alerts.alarm import Alarm, Kind
from failover_did.health.hysteresis import DOWN, UNVERIFIED, TargetHealth
from failover_did.observability import logger
from failover_did.routing import probe_target
from failover_did.rules.model import Rule, Tier
from failover_did.store import events, failovers, health_store, rules_store
from failover_did.store.events import Event
from failover_did.store.tables import FailoverCount

WINDOW = timedelta(minutes=60)  # recent events read for the message


@dataclass(frozen=True)
class Budget:
    """A number that failed over more often this month than its rule's monthly_failover_budget."""

    number: str
    failovers: int
    budget: int
    crossed_at: str = ""  # ISO time the budget was crossed (the metric behind the alarm was sent)


@dataclass(frozen=True)
class Situation:
    """What the formatter read from DynamoDB around the alarm."""

    down: tuple[TargetHealth, ...] = ()  # destinations whose state is down
    unverified: tuple[TargetHealth, ...] = ()  # never reached by the prober, and a probe of it has failed
    rules: tuple[Rule, ...] = ()
    events: tuple[Event, ...] = ()  # the last WINDOW of events, newest first
    last_check: str | None = None  # ISO time the health checker last finished a run
    budgets: tuple[Budget, ...] = ()  # numbers over their monthly budget (read for the budget alarm only)
    unread: tuple[str, ...] = ()  # what could not be read: "health", "rules", "events", "budgets"
    window: timedelta = WINDOW


@dataclass(frozen=True)
class Affected:
    """A down destination where it serves: `number`'s tier `index`; calls now go to `next_up`."""

    number: str
    index: int
    tier: Tier
    health: TargetHealth
    next_up: tuple[int, Tier] | None  # the first tier of the rule that is not down; None if all are


def affected(situation: Situation) -> list[Affected]:
    """Every (number, tier) whose probed destination is down, primaries first."""
    down = {h.target: h for h in situation.down if h.state == DOWN}
    found: list[Affected] = []
    for rule in situation.rules:
        up = [(i, t) for i, t in enumerate(rule.tiers) if probe_target(t) not in down]
        for index, tier in enumerate(rule.tiers):
            health = down.get(probe_target(tier))
            if health is not None:
                found.append(Affected(rule.number, index, tier, health, up[0] if up else None))
    return sorted(found, key=lambda a: (a.index, a.number, a.tier.target))


def uses(situation: Situation, target: str) -> list[Affected]:
    return [a for a in affected(situation) if a.health.target == target]


@dataclass(frozen=True)
class Unverified:
    """A destination the prober cannot reach where it serves: `number`'s tier `index` (still dialed)."""

    number: str
    index: int
    tier: Tier
    health: TargetHealth


def unverified(situation: Situation) -> list[Unverified]:
    """Every (number, tier) whose probed destination the prober has never reached, primaries first."""
    by_target = {h.target: h for h in situation.unverified if h.state == UNVERIFIED}
    found = [
        Unverified(rule.number, index, tier, by_target[probe_target(tier)])
        for rule in situation.rules
        for index, tier in enumerate(rule.tiers)
        if probe_target(tier) in by_target
    ]
    return sorted(found, key=lambda u: (u.index, u.number, u.tier.target))


def tier_target(s: Situation, number: str, index: int) -> str | None:
    for rule in s.rules:
        if rule.number == number and 0 <= index < len(rule.tiers):
            return rule.tiers[index].target
    return None


def read_situation(alarm: Alarm, now: datetime, window: timedelta = WINDOW) -> Situation:
    """Everything the wording may use; a part that cannot be read is named in `unread`, never raised."""
    unread: list[str] = []
    down: list[TargetHealth] = []
    unreached: list[TargetHealth] = []
    last_check: str | None = None
    rules: list[Rule] = []
    recent: list[Event] = []
    budgets: list[Budget] = []
    try:
        down, unreached, last_check = read_health()
    except Exception as error:
        log_unread("health", error)
        unread.append("health")
    try:
        rules = [stored.rule for stored in rules_store.all_rules()]
    except Exception as error:
        log_unread("rules", error)
        unread.append("rules")
    try:
        since = min(alarm.changed_at, now) - window
        found = (e for e in events.all_events(since) if not e.number.startswith("#"))
        recent = sorted(found, key=lambda e: e.at, reverse=True)
    except Exception as error:
        log_unread("events", error)
        unread.append("events")
    if alarm.kind is Kind.BUDGET and "rules" not in unread:
        try:
            budgets = read_budgets(rules, alarm.changed_at)
        except Exception as error:
            log_unread("budgets", error)
            unread.append("budgets")
    return Situation(
        down=tuple(down),
        unverified=tuple(unreached),
        rules=tuple(rules),
        events=tuple(recent),
        last_check=last_check,
        budgets=tuple(budgets),
        unread=tuple(unread),
        window=window,
    )


def read_health() -> tuple[list[TargetHealth], list[TargetHealth], str | None]:
    """The down destinations, those the prober cannot reach, and the last checker run, in one Scan (the
    policy has no GetItem). A target not probed yet is unverified too, but nothing has failed to reach it."""
    every, last = health_store.health_and_last_run()
    down = [health for health in every if health.state == DOWN]
    unreached = [health for health in every if health.state == UNVERIFIED and health.told_unverified]
    return down, unreached, last


def read_budgets(rules: Iterable[Rule], at: datetime) -> list[Budget]:
    """Numbers whose failovers this month exceed their rule's monthly_failover_budget."""
    over: list[Budget] = []
    key = failovers.month_key(at)
    for rule in rules:
        if not rule.monthly_failover_budget:
            continue
        for item in FailoverCount.query(rule.number, FailoverCount.sk == key):
            if int(item.failovers or 0) > rule.monthly_failover_budget:
                crossed = str(item.budget_alerted or "")
                over.append(Budget(rule.number, int(item.failovers), rule.monthly_failover_budget, crossed))
    return over


def log_unread(part: str, error: Exception) -> None:
    logger.warning("alert details not read", extra={"part": part, "error": f"{type(error).__name__}: {error}"})
