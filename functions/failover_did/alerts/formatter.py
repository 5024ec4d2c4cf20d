"""The alert formatter: CloudWatch alarm notifications in (AlarmTopic), readable words out (NotifyTopic).

Each alarm becomes one SNS message with an SMS text (one GSM-7 segment, at most 160 characters) and an
email (a subject and a plain-text body: the headline, the alarm's own reason, the recent events, every down
destination and what to check). The wording is pure (`compose`, fed an `Alarm` and a `Situation`); the
handler reads the situation from DynamoDB, keeps the same condition from paging twice while it lasts (a
record per alarm in the events table under "#alerts") and publishes. A DynamoDB failure never stops a page:
the message is then sent with the details it could not read left out.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from failover_did import metric_names as m
from failover_did.health.hysteresis import DOWN, TargetHealth
from failover_did.observability import logger
from failover_did.routing import probe_target
from failover_did.rules.model import Rule, Tier
from failover_did.store import events, failovers, health_store, rules_store
from failover_did.store.events import Event
from failover_did.store.tables import EventItem, FailoverCount, HealthItem

try:  # the page must go out even if a build left phonenumbers out: numbers are then shown as E.164
    _phonenumbers: Any = importlib.import_module("phonenumbers")
except ImportError:  # pragma: no cover - phonenumbers is a dependency of the project
    _phonenumbers = None

NOTIFY_TOPIC_ENV = "NOTIFY_TOPIC_ARN"
PREFIX = "failover-did: "
SMS_LIMIT = 160  # one GSM-7 segment
SUBJECT_LIMIT = 99  # SNS: ASCII, "less than 100 characters"
# "..." rather than "…": the ellipsis is not in the GSM-7 alphabet, and one such character turns the
# whole SMS into UCS-2, which splits a 160-character text into three billed segments.
ELLIPSIS = "..."
WINDOW = timedelta(minutes=60)  # recent events read for the message
EMAIL_EVENTS = 10  # at most this many events in the email's table
EMAIL_DOWN = 50  # at most this many down destinations in the email (an SNS message holds 256 KB)
ALERTS_PARTITION = "#alerts"  # events-table partition of the "what was last said" records
ALERT_KIND = "alert"
RECORD_DAYS = 7

ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"


class Kind(Enum):
    """Which alarm a notification is about; the value is its name for people."""

    FAILOVER = "failover active"
    UNREACHABLE = "destination unreachable"
    WEBHOOK_ERRORS = "webhook errors"
    API_5XX = "API 5xx"
    SIGNATURES = "signatures refused"
    BUDGET = "failover budget exceeded"
    HEALTH_CHECKER = "health checker not running"
    UNKNOWN = "alarm"


# (namespace, metric) -> kind. API Gateway names the metric "5xx" for HTTP APIs, "5XXError" for REST APIs.
KINDS: dict[tuple[str, str], Kind] = {
    (m.NAMESPACE, m.FAILOVERS): Kind.FAILOVER,
    (m.NAMESPACE, m.DESTINATIONS_DOWN): Kind.UNREACHABLE,
    ("AWS/Lambda", "Errors"): Kind.WEBHOOK_ERRORS,
    ("AWS/ApiGateway", "5xx"): Kind.API_5XX,
    ("AWS/ApiGateway", "5XXError"): Kind.API_5XX,
    (m.NAMESPACE, m.SIGNATURE_REJECTED): Kind.SIGNATURES,
    (m.NAMESPACE, m.FAILOVER_BUDGET_EXCEEDED): Kind.BUDGET,
    (m.NAMESPACE, m.HEALTH_CHECK_RUNS): Kind.HEALTH_CHECKER,
}


# --------------------------------------------------------------------------------------------------
# What the formatter is told and what it reads
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    """The parts of a CloudWatch alarm notification that the wording uses."""

    name: str
    state: str  # ALARM | OK | INSUFFICIENT_DATA
    changed_at: datetime
    old_state: str = ""
    reason: str = ""  # CloudWatch's NewStateReason
    description: str = ""
    region: str = ""  # as CloudWatch writes it: "US East (N. Virginia)"
    arn: str = ""
    namespace: str = ""
    metric: str = ""
    period: int = 0  # seconds
    threshold: float | None = None

    @property
    def kind(self) -> Kind:
        return KINDS.get((self.namespace, self.metric), Kind.UNKNOWN)

    @property
    def value(self) -> float | None:
        """The newest datapoint CloudWatch quotes in its reason ("... datapoints [3.0 (28/11/26 10:00:00)] ...")."""
        found = re.search(r"\[(-?\d+(?:\.\d+)?) \(", self.reason)
        return float(found.group(1)) if found else None

    @property
    def console_url(self) -> str | None:
        parts = self.arn.split(":", 6)
        if len(parts) < 7 or not parts[3]:
            return None
        region = parts[3]
        return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{parts[6]}"


def parse_alarm(message: Mapping[str, Any], received: datetime | None = None) -> Alarm:
    """An alarm from CloudWatch's notification JSON (the SNS message)."""
    raw = message.get("Trigger")
    trigger: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    threshold = trigger.get("Threshold")
    return Alarm(
        name=str(message.get("AlarmName") or "unnamed alarm"),
        state=str(message.get("NewStateValue") or ALARM),
        changed_at=_parse_time(message.get("StateChangeTime")) or received or datetime.now(UTC),
        old_state=str(message.get("OldStateValue") or ""),
        reason=str(message.get("NewStateReason") or ""),
        description=str(message.get("AlarmDescription") or ""),
        region=str(message.get("Region") or ""),
        arn=str(message.get("AlarmArn") or ""),
        namespace=str(trigger.get("Namespace") or ""),
        metric=str(trigger.get("MetricName") or ""),
        period=int(trigger.get("Period") or 0),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
    )


def alarm_of_record(record: Mapping[str, Any]) -> Alarm:
    """The alarm an SNS record carries. A message that is not an alarm's JSON still becomes an (unknown)
    alarm, so whatever was sent to the alarm topic reaches people rather than vanishing."""
    sns = record.get("Sns") or {}
    text = str(sns.get("Message") or "")
    received = _parse_time(sns.get("Timestamp"))
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if isinstance(message, Mapping) and "AlarmName" in message:
        return parse_alarm(message, received)
    return Alarm(
        name=str(sns.get("Subject") or "unreadable notification"),
        state=ALARM,
        changed_at=received or datetime.now(UTC),
        reason=" ".join(text.split())[:500],
    )


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
    rules: tuple[Rule, ...] = ()
    events: tuple[Event, ...] = ()  # the last WINDOW of events, newest first
    last_check: str | None = None  # ISO time the health checker last finished a run
    budgets: tuple[Budget, ...] = ()  # numbers over their monthly budget (read for the budget alarm only)
    unread: tuple[str, ...] = ()  # what could not be read: "health", "rules", "events", "budgets"
    window: timedelta = WINDOW


@dataclass(frozen=True)
class Notice:
    """What people get: an SMS, an email subject and body; `condition` fingerprints what was said (None
    when the facts could not be read, so it is never taken for a repeat)."""

    sms: str
    subject: str
    email: str
    condition: str | None = None


@dataclass(frozen=True)
class AlertRecord:
    """What was last said for an alarm (the "#alerts" record)."""

    state: str
    condition: str | None
    at: str = ""


# --------------------------------------------------------------------------------------------------
# Small wording helpers
# --------------------------------------------------------------------------------------------------


def human_number(text: str) -> str:
    """An E.164 number as people write it ("+1 415-555-0100"); anything else unchanged."""
    if not text.startswith("+") or _phonenumbers is None:
        return text
    try:
        parsed = _phonenumbers.parse(text, None)
    except Exception:  # phonenumbers.NumberParseException; show what we have
        return text
    return str(_phonenumbers.format_number(parsed, _phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def full_target(target: str) -> str:
    """A destination in full: numbers formatted, SIP URIs and URLs as written."""
    return human_number(target)


def short_target(target: str) -> str:
    """A destination for an SMS: "sip:frontdesk@pbx" for sip:frontdesk@pbx.example.com:5060;transport=tcp
    (host names cut to their first label, IP addresses kept whole), "pbx" for an http(s) health URL."""
    scheme, sep, rest = target.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        rest = rest.split(";", 1)[0].split("?", 1)[0]
        user, at, hostport = rest.rpartition("@")
        host = _short_host(hostport)
        return f"{scheme}:{user}@{host}" if at else f"{scheme}:{host}"
    if sep and scheme.lower() in ("http", "https"):
        return _short_host(urlsplit(target).netloc.rpartition("@")[2])
    return human_number(target)


def _short_host(hostport: str) -> str:
    if hostport.startswith("["):  # [IPv6]:port
        return hostport.split("]", 1)[0] + "]"
    host = hostport.split(":", 1)[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.split(".", 1)[0] or host
    return host


def tier_name(index: int) -> str:
    return "primary" if index == 0 else f"tier {index}"


def clock(when: str | datetime | None, ref: datetime) -> str:
    """ "10:02Z", or "27 Nov 10:02Z" when not on the reference day (both UTC)."""
    at = _parse_time(when) if not isinstance(when, datetime) else when
    if at is None:
        return "?"
    at = at.astimezone(UTC)
    if at.date() == ref.astimezone(UTC).date():
        return f"{at:%H:%M}Z"
    return f"{at.day} {at:%b %H:%M}Z"


def stamp(when: str | datetime | None) -> str:
    at = _parse_time(when) if not isinstance(when, datetime) else when
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}Z" if at else "?"


def span(seconds: int) -> str:
    if seconds <= 0:
        return "the last period"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def count(value: float | None, noun: str, plural: str | None = None) -> str:
    """ "3 calls", "1 call"."""
    n = round(value or 0)
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


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


# --------------------------------------------------------------------------------------------------
# Reading the situation: which numbers and tiers a down destination serves
# --------------------------------------------------------------------------------------------------


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


def _uses(situation: Situation, target: str) -> list[Affected]:
    return [a for a in affected(situation) if a.health.target == target]


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


def _month(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m}"


# --------------------------------------------------------------------------------------------------
# The words: one headline per kind and state
# --------------------------------------------------------------------------------------------------

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
    index = _int(e.detail.get("tier"))
    target = _tier_target(s, e.number, index) or str(e.detail.get("target") or "")
    since = clock(e.at, alarm.changed_at)
    main = f"recovered - {show(e.number)} {tier_name(index)} {show(target)} reachable again since {since}"
    others = {(x.number, str(x.detail.get("target"))) for x in back} - {(e.number, str(e.detail.get("target")))}
    return _Said(main, len(others), human_number(e.number))


def _failover(alarm: Alarm, s: Situation, show: Show) -> _Said:
    groups = _grouped(e for e in s.events if e.kind == "failover")
    if groups:
        number = max(groups, key=lambda n: _calls(groups[n]))  # ties: the most recent (dicts keep order)
        evs = groups[number]
        latest = evs[0]
        calls = _calls(evs)
        to = str(latest.detail.get("to_target") or tier_name(_int(latest.detail.get("to_tier"))))
        reason = f" ({latest.detail['reason']})" if latest.detail.get("reason") else ""
        since = clock(min(e.at for e in evs), alarm.changed_at)
        main = f"failover active on {show(number)} - {count(calls, 'call')} since {since} went to {show(to)}{reason}"
        return _Said(main, len(groups) - 1, human_number(number), "|".join(sorted(groups)))
    condition = None if "events" in s.unread else ""
    if alarm.value:
        return _Said(f"failover active - {count(alarm.value, 'failover')} in {span(alarm.period)}", condition=condition)
    return _Said("failover active - calls are going to failover tiers", condition=condition)


def _webhook_errors(alarm: Alarm, s: Situation, show: Show) -> _Said:
    what = f"failed {count(alarm.value, 'time')} in {span(alarm.period)}" if alarm.value else "is failing"
    return _Said(f"webhook errors - the voice function {what}; callers may get Twilio's fallback or an error")


def _api_5xx(alarm: Alarm, s: Situation, show: Show) -> _Said:
    if alarm.value:
        what = f"answered {count(alarm.value, 'request')} with 5xx in {span(alarm.period)}"
    else:
        what = "is answering 5xx"
    return _Said(f"API 5xx - the voice API {what}; Twilio falls back for those calls")


def _signatures(alarm: Alarm, s: Situation, show: Show) -> _Said:
    many = f"{count(alarm.value, 'webhook')} refused in {span(alarm.period)}" if alarm.value else "webhooks refused"
    return _Said(f"signatures refused (someone is probing the endpoint) - {many}; nothing was dialed for them")


def _budget(alarm: Alarm, s: Situation, show: Show) -> _Said:
    month = _month(alarm.changed_at)
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
        limit = f" (threshold {_number(alarm.threshold)})" if alarm.threshold is not None else ""
        detail = f"{alarm.metric} was {_number(alarm.value)} in {span(alarm.period)}{limit}"
    else:
        detail = alarm.reason
    return _Said(f"{alarm.name} is in {alarm.state}" + (f" - {detail}" if detail else ""), condition=alarm.state)


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _fixed(text: str) -> Callable[[Alarm, Situation, Show], _Said]:
    return lambda alarm, s, show: _Said(text)


_PROBLEM: dict[Kind, Callable[[Alarm, Situation, Show], _Said]] = {
    Kind.FAILOVER: _failover,
    Kind.UNREACHABLE: _unreachable,
    Kind.WEBHOOK_ERRORS: _webhook_errors,
    Kind.API_5XX: _api_5xx,
    Kind.SIGNATURES: _signatures,
    Kind.BUDGET: _budget,
    Kind.HEALTH_CHECKER: _health_checker,
    Kind.UNKNOWN: _unknown,
}

_RESOLVED: dict[Kind, Callable[[Alarm, Situation, Show], _Said]] = {
    Kind.FAILOVER: lambda alarm, s, show: _Said(f"resolved - no more failovers in the last {span(alarm.period)}"),
    Kind.UNREACHABLE: _unreachable_ok,
    Kind.WEBHOOK_ERRORS: _fixed("resolved - the voice function has stopped failing"),
    Kind.API_5XX: _fixed("resolved - the voice API answers without 5xx again"),
    Kind.SIGNATURES: _fixed("resolved - refused signatures are back to normal"),
    Kind.BUDGET: _fixed("resolved - the failover budget alarm has cleared"),
    Kind.HEALTH_CHECKER: _health_checker_ok,
    Kind.UNKNOWN: lambda alarm, s, show: _Said(f"resolved - {alarm.name} is OK again"),
}


def is_problem(alarm: Alarm, state: str | None = None) -> bool:
    """Whether `state` (default: the alarm's new one) means trouble for this alarm: ALARM, and for the
    health checker also INSUFFICIENT_DATA (no runs reported at all)."""
    state = alarm.state if state is None else state
    return state == ALARM or (state == INSUFFICIENT_DATA and alarm.kind is Kind.HEALTH_CHECKER)


def wants_notice(alarm: Alarm) -> bool:
    """INSUFFICIENT_DATA says nothing to people, except for the health checker's alarm."""
    return alarm.state != INSUFFICIENT_DATA or alarm.kind is Kind.HEALTH_CHECKER


def _said(alarm: Alarm, situation: Situation, show: Show) -> _Said:
    table = _PROBLEM if is_problem(alarm) else _RESOLVED
    return table[alarm.kind](alarm, situation, show)


def compose(alarm: Alarm, situation: Situation) -> Notice:
    """The SMS, subject and email for `alarm`, given what was read (`situation`). Pure."""
    short = _said(alarm, situation, short_target)
    full = _said(alarm, situation, full_target)
    tail = f"; +{short.more} more" if short.more else ""
    sms = fit(PREFIX + short.main, SMS_LIMIT, tail)
    headline = PREFIX + full.main + (f"; +{full.more} more" if full.more else "")
    return Notice(
        sms=sms, subject=subject(alarm, full), email=email(alarm, situation, headline), condition=short.condition
    )


def subject(alarm: Alarm, said: _Said) -> str:
    status = "ALARM" if alarm.state == ALARM else "resolved" if alarm.state == OK else "no data"
    label = alarm.name if alarm.kind is Kind.UNKNOWN else alarm.kind.value
    focus = f" on {said.focus}" if said.focus and is_problem(alarm) else ""
    more = f" +{said.more} more" if said.more and focus else ""
    return fit(f"failover-did {status}: {label}{focus}", SUBJECT_LIMIT, more)


# --------------------------------------------------------------------------------------------------
# The email
# --------------------------------------------------------------------------------------------------

ADVICE: dict[Kind, tuple[str, ...]] = {
    Kind.UNREACHABLE: (
        "Is the PBX (or the phone behind the destination) up and registered? Look at its own status page.",
        "Can it be reached from the internet on its SIP port (5060 UDP/TCP, 5061 TLS)? Check firewall, NAT, "
        "public IP and DNS changes.",
        "Run `failover-did probe <target>` from a machine outside your network to see what it answers: a SIP "
        "code (503, 486) means it answered but refused; timeout, refused or dns means nothing answers.",
        "Meanwhile calls skip the down destination and ring the next tier; once it answers the health checks "
        "again it is dialed first again, with nothing for you to do.",
    ),
    Kind.FAILOVER: (
        "Calls are reaching a failover tier: see the reason column of the events (busy, timeout, a SIP code, "
        "down) for why the primary did not take them.",
        "down or 5xx: is the PBX up? See whether a 'destination unreachable' alert came with this one.",
        "busy or timeout: is anyone staffing the primary, and are the ring timeouts long enough? "
        "`failover-did rules show <number>` shows the cascade.",
        "Some carriers charge a dual-billing fee when failover triggers more than N times a month.",
    ),
    Kind.WEBHOOK_ERRORS: (
        "Look at the VoiceFunction's logs (the log group ending in -voice, the stack's VoiceLogGroupName "
        "output) for the error and its traceback.",
        "Was something deployed just before? Deploy the previous version again if so.",
        "Are the DynamoDB tables and the SSM auth-token parameter there, and may the function read them?",
        "Meanwhile Twilio plays the number's Voice Fallback URL (the static cascade) if one is set, "
        "else an error message: `failover-did twilio attach <number> --dry-run` shows what is set.",
    ),
    Kind.API_5XX: (
        "5xx from the API usually mean the voice function failed, timed out or was throttled: see the "
        "Errors and Duration of the voice function on the dashboard.",
        "The API is throttled at 100 requests/s (bursts of 200); a flood of requests can use that up.",
        "Twilio fetches the number's Voice Fallback URL for those calls if one is set.",
    ),
    Kind.SIGNATURES: (
        "Is the auth token in SSM (the TwilioAuthTokenParameterName parameter) the account's current token? "
        "A token rotated in the Twilio Console makes every real call fail the check.",
        "Was the Voice URL changed (custom domain, path, PublicBaseUrl)? Twilio signs the exact URL it calls.",
        "If neither: someone is sending forged requests to the endpoint. They get 403 and nothing is dialed; "
        "the API's throttling limits what they cost. If it goes on, put CloudFront with AWS WAF in front of "
        "the API (HTTP APIs take no WAF of their own) and set PublicBaseUrl to its address.",
    ),
    Kind.BUDGET: (
        "Some carriers charge a dual-billing fee when failover triggers more than N times a month: check your "
        "carrier's terms.",
        "Find why calls fail over (the events below, the failover and unreachable alerts) and fix the primary.",
        "If this many failovers is expected, raise the number's monthly_failover_budget in the rules file and "
        "run `failover-did rules apply`.",
    ),
    Kind.HEALTH_CHECKER: (
        "Look at the HealthCheckFunction's logs (the log group ending in -health) for errors or timeouts.",
        "Is its EventBridge schedule (HealthCheckSchedule) enabled, and is the function throttled or out of "
        "concurrency?",
        "Until it runs again, a dead destination is not skipped: each call rings it first and waits for its "
        "timeout before failing over.",
    ),
    Kind.UNKNOWN: ("Open the alarm in the CloudWatch console (link below) to see its metric and history.",),
}


def email(alarm: Alarm, s: Situation, headline: str) -> str:
    lines = [headline, ""]
    label = alarm.name if alarm.kind is Kind.UNKNOWN else alarm.kind.value
    was = f" (was {alarm.old_state})" if alarm.old_state else ""
    where = f" in {alarm.region}" if alarm.region else ""
    lines.append(f"Alarm '{label}' is {alarm.state}{was} since {stamp(alarm.changed_at)}{where}.")
    if alarm.description:
        lines.append(alarm.description)
    lines.append(f"CloudWatch says: {alarm.reason or '(no reason given)'}")
    lines += ["", *_down_section(alarm, s), "", *_events_section(alarm, s)]
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


def _down_section(alarm: Alarm, s: Situation) -> list[str]:
    down = [h for h in s.down if h.state == DOWN]
    if "health" in s.unread:
        return ["Down destinations: unknown (the health table could not be read)."]
    if not down:
        return ["Down destinations: none."]
    lines = [f"Down destinations now ({len(down)}):"]
    for h in sorted(down, key=lambda d: (d.since, d.target))[:EMAIL_DOWN]:
        reason = f"{h.reason}; " if h.reason else ""
        last = f", last check {clock(h.checked_at, alarm.changed_at)}" if h.checked_at else ""
        lines.append(
            f"  {full_target(h.target)}: down since {stamp(h.since)} ({reason}{count(h.failures, 'failed check')}"
            f" in a row{last})"
        )
        uses = _uses(s, h.target)
        for a in uses:
            dialed = f" {full_target(a.tier.target)}" if a.tier.target != h.target else ""
            if a.next_up is None:
                go = "every tier of it is down; calls ring them all in order"
            else:
                go = f"calls go to {full_target(a.next_up[1].target)} ({tier_name(a.next_up[0])})"
            lines.append(f"    {tier_name(a.index)}{dialed} of {human_number(a.number)} - {go}")
        if not uses and "rules" not in s.unread:
            lines.append("    (no rule uses it any more)")
    if len(down) > EMAIL_DOWN:
        lines.append(f"  ... and {len(down) - EMAIL_DOWN} more (`failover-did status` lists them all)")
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
    rows += [(clock(e.at, alarm.changed_at), human_number(e.number), e.kind, describe_event(e)) for e in shown]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    table = [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
    return [heading, *table]


def describe_event(e: Event) -> str:
    """One line of an event's detail for the email's table."""
    d = e.detail
    if e.kind == "failover":
        to = full_target(str(d.get("to_target") or ""))
        text = f"{tier_name(_int(d.get('from_tier')))} -> {tier_name(_int(d.get('to_tier')))} {to}".rstrip()
        if d.get("reason"):
            text += f" ({d['reason']})"
        return text + (f", call {d['call_sid']}" if d.get("call_sid") else "")
    if e.kind in ("unreachable", "recovered") and "target" in d:
        state = f" {d['state']}" if e.kind == "recovered" and d.get("state") else ""
        reason = f": {d['reason']}" if d.get("reason") else ""
        return f"{tier_name(_int(d.get('tier')))} {full_target(str(d['target']))}{state}{reason}"
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()))[:200]


def _tier_target(s: Situation, number: str, index: int) -> str | None:
    for rule in s.rules:
        if rule.number == number and 0 <= index < len(rule.tiers):
            return rule.tiers[index].target
    return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Not paging twice for the same condition
# --------------------------------------------------------------------------------------------------


def should_publish(alarm: Alarm, condition: str | None, prior: AlertRecord | None, known: bool = True) -> bool:
    """Whether to send `alarm` given what was last said for it (`prior`; `known` False when that could
    not be read). A problem is sent unless the same condition was already sent and not resolved since; a
    resolution is sent when a problem was said (or, with no record, when CloudWatch says it left ALARM)."""
    if is_problem(alarm):
        return not (
            known
            and prior is not None
            and is_problem(alarm, prior.state)
            and condition is not None
            and prior.condition == condition
        )
    if known and prior is not None:
        return is_problem(alarm, prior.state)
    return is_problem(alarm, alarm.old_state)


def read_record(alarm_name: str, now: datetime) -> AlertRecord | None:
    """What was last said for the alarm (a Query: the formatter's policy has no GetItem)."""
    for item in EventItem.query(ALERTS_PARTITION, EventItem.sk == alarm_name, consistent_read=True):
        if item.expires_at is not None and item.expires_at <= now.timestamp():
            return None  # past its TTL, not yet swept by DynamoDB
        detail = dict(item.detail or {})
        condition = detail.get("condition")
        return AlertRecord(
            str(detail.get("state") or ""), None if condition is None else str(condition), str(detail.get("at") or "")
        )
    return None


def write_record(alarm: Alarm, condition: str | None, now: datetime) -> None:
    EventItem(
        ALERTS_PARTITION,
        alarm.name,
        kind=ALERT_KIND,
        detail={"state": alarm.state, "condition": condition, "at": events.iso(now)},
        expires_at=int((now + timedelta(days=RECORD_DAYS)).timestamp()),
    ).save()


# --------------------------------------------------------------------------------------------------
# Reading DynamoDB and publishing
# --------------------------------------------------------------------------------------------------


def read_situation(alarm: Alarm, now: datetime, window: timedelta = WINDOW) -> Situation:
    """Everything the wording may use; a part that cannot be read is named in `unread`, never raised."""
    unread: list[str] = []
    down: list[TargetHealth] = []
    last_check: str | None = None
    rules: list[Rule] = []
    recent: list[Event] = []
    budgets: list[Budget] = []
    try:
        down, last_check = read_health()
    except Exception as error:
        _log_unread("health", error)
        unread.append("health")
    try:
        rules = [stored.rule for stored in rules_store.all_rules()]
    except Exception as error:
        _log_unread("rules", error)
        unread.append("rules")
    try:
        since = min(alarm.changed_at, now) - window
        found = (e for e in events.all_events(since) if not e.number.startswith("#"))
        recent = sorted(found, key=lambda e: e.at, reverse=True)
    except Exception as error:
        _log_unread("events", error)
        unread.append("events")
    if alarm.kind is Kind.BUDGET and "rules" not in unread:
        try:
            budgets = read_budgets(rules, alarm.changed_at)
        except Exception as error:
            _log_unread("budgets", error)
            unread.append("budgets")
    return Situation(
        down=tuple(down),
        rules=tuple(rules),
        events=tuple(recent),
        last_check=last_check,
        budgets=tuple(budgets),
        unread=tuple(unread),
        window=window,
    )


def read_health() -> tuple[list[TargetHealth], str | None]:
    """The down destinations and the last checker run, in one Scan (the policy has no GetItem)."""
    down: list[TargetHealth] = []
    last: str | None = None
    for item in HealthItem.scan():
        if item.target == health_store.RUN_MARKER:
            last = item.checked_at or None
            continue
        health = health_store.to_health(item)
        if health.state == DOWN:
            down.append(health)
    return down, last


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


def _log_unread(part: str, error: Exception) -> None:
    logger.warning("alert details not read", extra={"part": part, "error": f"{type(error).__name__}: {error}"})


_sns: Any = None


def sns_client(region: str | None = None) -> Any:
    """The SNS client, created on first use and then kept for the container's life."""
    global _sns
    if _sns is None:
        import boto3

        _sns = boto3.client("sns", region_name=region) if region else boto3.client("sns")
    return _sns


def publish(notice: Notice, topic_arn: str) -> str:
    """One SNS message with a text per protocol: the email body by default and for email, the SMS for sms."""
    parts = topic_arn.split(":")
    response = sns_client(parts[3] if len(parts) > 5 and parts[3] else None).publish(
        TopicArn=topic_arn,
        Subject=notice.subject,
        Message=json.dumps({"default": notice.email, "email": notice.email, "sms": notice.sms}),
        MessageStructure="json",
    )
    return str(response["MessageId"])


def handle(record: Mapping[str, Any], topic_arn: str, now: datetime) -> dict[str, Any]:
    """One SNS record: read, word, decide, publish, remember. Returns what was done (for the logs)."""
    alarm = alarm_of_record(record)
    result: dict[str, Any] = {"alarm": alarm.name, "state": alarm.state, "kind": alarm.kind.name}
    if not wants_notice(alarm):
        return {**result, "action": "ignored"}
    notice = compose(alarm, read_situation(alarm, now))
    try:
        prior, known = read_record(alarm.name, now), True
    except Exception as error:
        _log_unread("alert record", error)
        prior, known = None, False
    if not should_publish(alarm, notice.condition, prior, known):
        logger.info("alert not sent again", extra={**result, "condition": notice.condition})
        return {**result, "action": "repeat"}
    message_id = publish(notice, topic_arn)
    try:
        write_record(alarm, notice.condition, now)
    except Exception as error:
        logger.warning("alert record not written", extra={**result, "error": f"{type(error).__name__}: {error}"})
    logger.info("alert sent", extra={**result, "sms": notice.sms, "message_id": message_id})
    return {**result, "action": "published", "message_id": message_id, "sms": notice.sms}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """The Lambda subscribed to AlarmTopic."""
    topic_arn = os.environ[NOTIFY_TOPIC_ENV]
    now = datetime.now(UTC)
    return {"results": [handle(record, topic_arn, now) for record in event.get("Records") or []]}
