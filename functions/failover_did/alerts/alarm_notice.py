"""The words of an alarm notice, pure: an `Alarm` and a `Situation` in, an SMS (one GSM-7 segment), an email
subject and a plain-text email out (the headline, the alarm's own reason, the recent events, every down
destination, those the prober cannot reach, and what to check). Also the short notice for a message on the
alarm topic that is no alarm."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from failover_did.alerts.advice import ADVICE
from failover_did.alerts.alarm import (
    ALARM,
    DESCRIPTION_LIMIT,
    FIELD_LIMIT,
    NAME_LIMIT,
    OK,
    REASON_LIMIT,
    Alarm,
    Kind,
    NotAnAlarm,
    is_problem,
)
from failover_did.alerts.delivery import Notice
from failover_did.alerts.gsm import SMS_LIMIT, SUBJECT_LIMIT, fit
from failover_did.alerts.situation import Situation, affected, tier_target, unverified, uses
from failover_did.alerts.wording import (
    as_int,
    clock,
    count,
    full_target,
    human_number,
    one_line,
    quantity,
    short_target,
    span,
    stamp,
    tier_name,
    within,
)
from failover_did.health.hysteresis import DOWN, UNVERIFIED
from failover_did.store.events import Event

PREFIX = "failover-did: "
EMAIL_EVENTS = 10  # at most this many events in the email's table
EMAIL_DOWN = 50  # at most this many down destinations in the email (an SNS message holds 256 KB)
DETAIL_LIMIT = 200  # characters of a stored detail (a reason, an event) on one line of the email


@dataclass(frozen=True)
class AlarmNotice(Notice):
    """An alarm's notice; `condition` fingerprints what was said (None when the facts could not be read, so
    it is never taken for a repeat)."""

    condition: str | None = None


Show = Callable[[str], str]


@dataclass(frozen=True)
class _Said:
    main: str  # the headline without the "failover-did: " prefix and without the "+N more" tail
    more: int = 0  # further numbers/destinations affected
    focus: str = ""  # the first number (or destination) concerned, for the subject
    condition: str | None = ""


def _unreachable(alarm: Alarm, s: Situation, show: Show) -> _Said:
    hits = affected(s)
    if hits:
        a = hits[0]
        reason = f" ({a.health.reason})" if a.health.reason else ""
        since = clock(a.health.since or alarm.changed_at, alarm.changed_at)
        go = f"; calls go to {show(a.next_up[1].target)}" if a.next_up else "; every tier is down"
        main = f"{show(a.number)} {tier_name(a.index)} {show(a.tier.target)} unreachable{reason} since {since}{go}"
        condition = "|".join(sorted({h.health.target for h in hits}))
        return _Said(main, len(hits) - 1, human_number(a.number), condition)
    down = sorted((h for h in s.down if h.state == DOWN), key=lambda h: (h.since, h.target))
    if down:  # no rule (that could be read) uses it: say what is down without where it serves
        h = down[0]
        reason = f" ({h.reason})" if h.reason else ""
        main = f"{show(h.target)} unreachable{reason} since {clock(h.since or alarm.changed_at, alarm.changed_at)}"
        return _Said(main, len(down) - 1, full_target(h.target), "|".join(sorted(d.target for d in down)))
    unknown = None if {"health", "rules"} & set(s.unread) else ""
    since = clock(alarm.changed_at, alarm.changed_at)
    if alarm.value:
        return _Said(f"{count(alarm.value, 'destination')} unreachable since {since}", condition=unknown)
    return _Said(f"a destination is unreachable since {since}", condition=unknown)


def _unreachable_ok(alarm: Alarm, s: Situation, show: Show) -> _Said:
    still_down = {h.target for h in s.down if h.state == DOWN}
    back = [e for e in s.events if e.kind == "recovered" and e.detail.get("target") not in still_down]
    if not back:
        return _Said("recovered - every destination is reachable again")
    e = back[0]
    index = as_int(e.detail.get("tier"))
    target = tier_target(s, e.number, index) or str(e.detail.get("target") or "")
    since = clock(e.at, alarm.changed_at)
    main = f"recovered - {show(e.number)} {tier_name(index)} {show(target)} reachable again since {since}"
    others = {(x.number, str(x.detail.get("target"))) for x in back} - {(e.number, str(e.detail.get("target")))}
    return _Said(main, len(others), human_number(e.number))


UNVERIFIED_ADVICE = "Allow the probe's source or set health:/probe: false"


def _unverified(alarm: Alarm, s: Situation, show: Show) -> _Said:
    still = "calls still go there"
    hits = unverified(s)
    if hits:
        u = hits[0]
        where = f"{show(u.number)} {tier_name(u.index)}"
        main = f"the prober cannot reach {show(u.health.target)} ({where}); {still}. {UNVERIFIED_ADVICE}"
        condition = "|".join(sorted({h.health.target for h in hits}))
        return _Said(main, len(hits) - 1, human_number(u.number), condition)
    targets = sorted(s.unverified, key=lambda h: (h.since, h.target))
    if targets:  # no rule (that could be read) uses it
        h = targets[0]
        main = f"the prober cannot reach {show(h.target)}; {still}. {UNVERIFIED_ADVICE}"
        return _Said(main, len(targets) - 1, full_target(h.target), "|".join(sorted(t.target for t in targets)))
    unknown = None if {"health", "rules"} & set(s.unread) else ""
    return _Said(f"the prober cannot reach a destination; {still}. {UNVERIFIED_ADVICE}", condition=unknown)


def _unverified_ok(alarm: Alarm, s: Situation, show: Show) -> _Said:
    # The alarm clears when no new target was told for a period, not when the prober reaches one: say which.
    still = {h.target for h in s.unverified if h.state == UNVERIFIED}
    reached = [e for e in s.events if e.kind == "verified" and e.detail.get("target") not in still]
    if reached and not still:
        e = reached[0]
        index = as_int(e.detail.get("tier"))
        target = str(e.detail.get("target") or "")
        main = f"the prober now reaches {show(target)} ({show(e.number)} {tier_name(index)})"
        return _Said(main, len({str(x.detail.get("target")) for x in reached}) - 1, human_number(e.number))
    if still:
        waiting = count(len(still), "destination")
        return _Said(f"resolved - no new unverified destination; {waiting} still not reached by the prober")
    return _Said("resolved - the destination unverified alarm has cleared")


def _grouped(evs: Iterable[Event]) -> dict[str, list[Event]]:
    """Events by number, newest first within a number; numbers in order of their newest event."""
    groups: dict[str, list[Event]] = {}
    for event in evs:
        groups.setdefault(event.number, []).append(event)
    return groups


def _calls(evs: Sequence[Event]) -> int:
    sids = {str(e.detail.get("call_sid") or "") for e in evs}
    sids.discard("")
    return len(sids) or len(evs)


def _failover(alarm: Alarm, s: Situation, show: Show) -> _Said:
    groups = _grouped(e for e in s.events if e.kind == "failover")
    if groups:
        number = max(groups, key=lambda n: _calls(groups[n]))  # ties: the most recent (dicts keep order)
        evs = groups[number]
        latest = evs[0]
        calls = _calls(evs)
        to = str(latest.detail.get("to_target") or tier_name(as_int(latest.detail.get("to_tier"))))
        reason = f" ({latest.detail['reason']})" if latest.detail.get("reason") else ""
        since = clock(min(e.at for e in evs), alarm.changed_at)
        main = f"failover active on {show(number)} - {count(calls, 'call')} since {since} went to {show(to)}{reason}"
        return _Said(main, len(groups) - 1, human_number(number), "|".join(sorted(groups)))
    condition = None if "events" in s.unread else ""
    if alarm.value:
        return _Said(f"failover active - {count(alarm.value, 'failover')} {within(alarm.period)}", condition=condition)
    return _Said("failover active - calls are going to failover tiers", condition=condition)


def _webhook_errors(alarm: Alarm, s: Situation, show: Show) -> _Said:
    what = f"failed {count(alarm.value, 'time')} {within(alarm.period)}" if alarm.value else "is failing"
    return _Said(f"webhook errors - the voice function {what}; callers may get Twilio's fallback or an error")


def _api_5xx(alarm: Alarm, s: Situation, show: Show) -> _Said:
    if alarm.value:
        what = f"answered {count(alarm.value, 'request')} with 5xx {within(alarm.period)}"
    else:
        what = "is answering 5xx"
    return _Said(f"API 5xx - the voice API {what}; Twilio falls back for those calls")


def _signatures(alarm: Alarm, s: Situation, show: Show) -> _Said:
    many = f"{count(alarm.value, 'webhook')} refused {within(alarm.period)}" if alarm.value else "webhooks refused"
    return _Said(f"signatures refused (someone is probing the endpoint) - {many}; nothing was dialed for them")


def _budget(alarm: Alarm, s: Situation, show: Show) -> _Said:
    month = f"{alarm.changed_at.astimezone(UTC):%Y-%m}"
    fee = "carriers may charge a dual-billing fee"
    # The number that crossed last is the one this alarm is about; then the furthest over.
    over = sorted(s.budgets, key=lambda b: (b.crossed_at, b.failovers - b.budget, b.number), reverse=True)
    if over:
        b = over[0]
        main = (
            f"failover budget exceeded on {show(b.number)} - {b.failovers} failovers this month"
            f" (budget {b.budget}); {fee}"
        )
        return _Said(
            main, len(over) - 1, human_number(b.number), month + ":" + "|".join(sorted(x.number for x in over))
        )
    groups = _grouped(e for e in s.events if e.kind == "failover")
    if groups:
        number = next(iter(groups))
        main = f"failover budget exceeded (recent failovers on {show(number)}); {fee}"
        return _Said(main, len(groups) - 1, human_number(number), month + ":" + "|".join(sorted(groups)))
    unknown = {"budgets", "events", "rules"} & set(s.unread)
    return _Said(f"failover budget exceeded on a number; {fee}", condition=None if unknown else month)


def _health_checker(alarm: Alarm, s: Situation, show: Show) -> _Said:
    if s.last_check:
        last = f"last run {clock(s.last_check, alarm.changed_at)}"
    else:
        last = "last run unknown" if "health" in s.unread else "no run recorded"
    return _Said(f"health checker not running - {last}; down destinations are not skipped")


def _health_checker_ok(alarm: Alarm, s: Situation, show: Show) -> _Said:
    last = f" (last run {clock(s.last_check, alarm.changed_at)})" if s.last_check else ""
    return _Said(f"recovered - the health checker is running again{last}")


def _unknown(alarm: Alarm, s: Situation, show: Show) -> _Said:
    """An alarm this module does not know: its name, then its description (written by people), else the
    metric's value from CloudWatch's reason, else the reason as it stands."""
    if alarm.description:
        detail = alarm.description
    elif alarm.value is not None and alarm.metric:
        limit = f" (threshold {quantity(alarm.threshold)})" if alarm.threshold is not None else ""
        detail = f"{alarm.metric} was {quantity(alarm.value)} {within(alarm.period)}{limit}"
    else:
        detail = alarm.reason
    return _Said(f"{alarm.name} is in {alarm.state}" + (f" - {detail}" if detail else ""), condition=alarm.state)


def _fixed(text: str) -> Callable[[Alarm, Situation, Show], _Said]:
    return lambda alarm, s, show: _Said(text)


def _failover_ok(alarm: Alarm, s: Situation, show: Show) -> _Said:
    lately = f" in the last {span(alarm.period)}" if alarm.period else ""
    return _Said(f"resolved - no more failovers{lately}")


_PROBLEM: dict[Kind, Callable[[Alarm, Situation, Show], _Said]] = {
    Kind.FAILOVER: _failover,
    Kind.UNREACHABLE: _unreachable,
    Kind.UNVERIFIED: _unverified,
    Kind.WEBHOOK_ERRORS: _webhook_errors,
    Kind.API_5XX: _api_5xx,
    Kind.SIGNATURES: _signatures,
    Kind.BUDGET: _budget,
    Kind.HEALTH_CHECKER: _health_checker,
    Kind.UNKNOWN: _unknown,
}

_RESOLVED: dict[Kind, Callable[[Alarm, Situation, Show], _Said]] = {
    Kind.FAILOVER: _failover_ok,
    Kind.UNREACHABLE: _unreachable_ok,
    Kind.UNVERIFIED: _unverified_ok,
    Kind.WEBHOOK_ERRORS: _fixed("resolved - the voice function has stopped failing"),
    Kind.API_5XX: _fixed("resolved - the voice API answers without 5xx again"),
    Kind.SIGNATURES: _fixed("resolved - refused signatures are back to normal"),
    Kind.BUDGET: _fixed("resolved - the failover budget alarm has cleared"),
    Kind.HEALTH_CHECKER: _health_checker_ok,
    Kind.UNKNOWN: lambda alarm, s, show: _Said(f"resolved - {alarm.name} is OK again"),
}


def _said(alarm: Alarm, situation: Situation, show: Show) -> _Said:
    table = _PROBLEM if is_problem(alarm) else _RESOLVED
    return table[alarm.kind](alarm, situation, show)


def _one_line_fields(alarm: Alarm) -> Alarm:
    """The alarm with its texts on one bounded line each (already so when it was parsed from a message)."""
    return replace(
        alarm,
        name=one_line(alarm.name, NAME_LIMIT) or "unnamed alarm",
        reason=one_line(alarm.reason, REASON_LIMIT),
        description=one_line(alarm.description, DESCRIPTION_LIMIT),
        region=one_line(alarm.region, FIELD_LIMIT),
        metric=one_line(alarm.metric, FIELD_LIMIT),
    )


def compose(alarm: Alarm, situation: Situation) -> AlarmNotice:
    """The SMS, subject and email for `alarm`, given what was read (`situation`). Pure."""
    alarm = _one_line_fields(alarm)
    short = _said(alarm, situation, lambda target: short_target(_detail(target)))
    full = _said(alarm, situation, lambda target: full_target(_detail(target)))
    tail = f"; +{short.more} more" if short.more else ""
    sms = fit(PREFIX + short.main, SMS_LIMIT, tail)
    headline = PREFIX + one_line(full.main, 2000) + (f"; +{full.more} more" if full.more else "")
    return AlarmNotice(
        sms=sms, subject=subject(alarm, full), email=email(alarm, situation, headline), condition=short.condition
    )


def subject(alarm: Alarm, said: _Said) -> str:
    status = "ALARM" if alarm.state == ALARM else "resolved" if alarm.state == OK else "no data"
    label = alarm.name if alarm.kind is Kind.UNKNOWN else alarm.kind.value
    focus = f" on {said.focus}" if said.focus and is_problem(alarm) else ""
    more = f" +{said.more} more" if said.more and focus else ""
    return fit(f"failover-did {status}: {label}{focus}", SUBJECT_LIMIT, more)


def email(alarm: Alarm, s: Situation, headline: str) -> str:
    lines = [headline, ""]
    label = alarm.name if alarm.kind is Kind.UNKNOWN else alarm.kind.value
    was = f" (was {alarm.old_state})" if alarm.old_state else ""
    where = f" in {alarm.region}" if alarm.region else ""
    lines.append(f"Alarm '{label}' is {alarm.state}{was} since {stamp(alarm.changed_at)}{where}.")
    if alarm.description:  # labelled: a line of the email never starts with text from the message
        lines.append(f"Description: {alarm.description}")
    lines.append(f"CloudWatch says: {alarm.reason or '(no reason given)'}")
    lines += ["", *_down_section(alarm, s)]
    if alarm.kind is Kind.UNVERIFIED:
        lines += ["", *_unverified_section(alarm, s)]
    lines += ["", *_events_section(alarm, s)]
    if is_problem(alarm):
        lines += ["", "What to check:", *(f"  - {advice}" for advice in ADVICE[alarm.kind])]
    if s.unread:
        lines += [
            "",
            f"Could not read {', '.join(s.unread)} from DynamoDB; this message may leave out details.",
        ]
    lines += ["", f"Alarm name: {alarm.name}"]
    if alarm.console_url:
        lines.append(f"In the console: {alarm.console_url}")
    return "\n".join(lines) + "\n"


def _detail(text: object) -> str:
    return one_line(text, DETAIL_LIMIT)


def _down_section(alarm: Alarm, s: Situation) -> list[str]:
    down = [h for h in s.down if h.state == DOWN]
    if "health" in s.unread:
        return ["Down destinations: unknown (the health table could not be read)."]
    if not down:
        return ["Down destinations: none."]
    lines = [f"Down destinations now ({len(down)}):"]
    for h in sorted(down, key=lambda d: (d.since, d.target))[:EMAIL_DOWN]:
        reason = f"{_detail(h.reason)}; " if h.reason else ""
        last = f", last check {clock(h.checked_at, alarm.changed_at)}" if h.checked_at else ""
        lines.append(
            f"  {full_target(_detail(h.target))}: down since {stamp(h.since)} ({reason}"
            f"{count(h.failures, 'failed check')} in a row{last})"
        )
        serving = uses(s, h.target)
        for a in serving:
            dialed = f" {full_target(_detail(a.tier.target))}" if a.tier.target != h.target else ""
            if a.next_up is None:
                go = "every tier of it is down; calls ring them all in order"
            else:
                go = f"calls go to {full_target(_detail(a.next_up[1].target))} ({tier_name(a.next_up[0])})"
            lines.append(f"    {tier_name(a.index)}{dialed} of {human_number(_detail(a.number))} - {go}")
        if not serving and "rules" not in s.unread:
            lines.append("    (no rule uses it any more)")
    if len(down) > EMAIL_DOWN:
        lines.append(f"  ... and {len(down) - EMAIL_DOWN} more (`failover-did status` lists them all)")
    return lines


def _unverified_section(alarm: Alarm, s: Situation) -> list[str]:
    reached_not = sorted((h for h in s.unverified if h.state == UNVERIFIED), key=lambda h: (h.since, h.target))
    if "health" in s.unread:
        return ["Destinations the prober cannot reach: unknown (the health table could not be read)."]
    if not reached_not:
        return ["Destinations the prober cannot reach: none now."]
    hits = unverified(s)
    lines = [f"Destinations the prober cannot reach ({len(reached_not)}); calls still go to each of them:"]
    for h in reached_not[:EMAIL_DOWN]:
        last = f" at {clock(h.checked_at, alarm.changed_at)}" if h.checked_at else ""
        reason = f"; last probe: {_detail(h.reason)}{last}" if h.reason else ""
        lines.append(f"  {full_target(_detail(h.target))}: never reached since {stamp(h.since)}{reason}")
        serving = [u for u in hits if u.health.target == h.target]
        for u in serving:
            dialed = f" {full_target(_detail(u.tier.target))}" if u.tier.target != h.target else ""
            lines.append(f"    {tier_name(u.index)}{dialed} of {human_number(_detail(u.number))}")
        if not serving and "rules" not in s.unread:
            lines.append("    (no rule uses it any more)")
    if len(reached_not) > EMAIL_DOWN:
        lines.append(f"  ... and {len(reached_not) - EMAIL_DOWN} more (`failover-did status` lists them all)")
    return lines


def _events_section(alarm: Alarm, s: Situation) -> list[str]:
    minutes = int(s.window.total_seconds() // 60)
    if "events" in s.unread:
        return ["Recent events: unknown (the events table could not be read)."]
    if not s.events:
        return [f"Recent events: none in the last {minutes} min."]
    shown = s.events[:EMAIL_EVENTS]
    heading = f"Recent events (last {minutes} min, newest first"
    heading += f", {len(shown)} of {len(s.events)}):" if len(shown) < len(s.events) else "):"
    rows = [("time", "number", "kind", "details")]
    rows += [
        (clock(e.at, alarm.changed_at), human_number(_detail(e.number)), _detail(e.kind), describe_event(e))
        for e in shown
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    table = [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
    return [heading, *table]


def describe_event(e: Event) -> str:
    """One line of an event's detail for the email's table."""
    d = e.detail
    if e.kind == "failover":
        to = full_target(str(d.get("to_target") or ""))
        text = f"{tier_name(as_int(d.get('from_tier')))} -> {tier_name(as_int(d.get('to_tier')))} {to}".rstrip()
        if d.get("reason"):
            text += f" ({d['reason']})"
        return _detail(text + (f", call {d['call_sid']}" if d.get("call_sid") else ""))
    if e.kind in ("unreachable", "recovered") and "target" in d:
        state = f" {d['state']}" if e.kind == "recovered" and d.get("state") else ""
        reason = f": {d['reason']}" if d.get("reason") else ""
        return _detail(f"{tier_name(as_int(d.get('tier')))} {full_target(str(d['target']))}{state}{reason}")
    return _detail(", ".join(f"{k}={v}" for k, v in sorted(d.items())))


def not_an_alarm(message: NotAnAlarm, now: datetime) -> AlarmNotice:
    """The notice for a message on the alarm topic that is no CloudWatch alarm: its size and where it is
    logged, never its text (whoever can publish to the topic must not be able to write to people in our
    name). `condition` is the hour, so a flood of them pages at most once an hour."""
    size = count(message.size, "byte")
    sms = fit(f"{PREFIX}a message that is not a CloudWatch alarm arrived on the alarm topic ({size}); see the log")
    found = f'its SNS message id "{message.message_id}"' if message.message_id else '"not a CloudWatch alarm"'
    lines = [
        f"{PREFIX}a message that is not a CloudWatch alarm arrived on the alarm topic ({size}).",
        "",
        f"It arrived at {stamp(message.received)}. It is not relayed: the alarm topic should carry only the "
        "stack's CloudWatch alarms, and its text could say anything in failover-did's name.",
        "Its beginning is in the formatter's log (the log group ending in -formatter): search for " + found + ".",
        "",
        "What to check:",
        "  - Who publishes to the AlarmTopic besides the stack's alarms? Only this AWS account may (the topic's "
        "default policy): a test message from the SNS console, another service wired to the wrong topic.",
        "  - Such messages are logged every time and notified at most once an hour.",
    ]
    return AlarmNotice(
        sms=sms,
        subject="failover-did notice: a message that is not an alarm arrived",
        email="\n".join(lines) + "\n",
        about="not-an-alarm",
        condition=f"{now.astimezone(UTC):%Y-%m-%dT%H}",
    )
