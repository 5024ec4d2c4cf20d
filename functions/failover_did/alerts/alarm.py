"""A CloudWatch alarm notification (the JSON CloudWatch publishes to the AlarmTopic) read strictly into a
typed `Alarm`; anything else that arrives on the topic becomes a `NotAnAlarm` that says only its size.

Reading never raises: text from the message is folded onto one bounded line (`wording.one_line`), and a
number that is missing, malformed, infinite or absurd is None, shown as "unknown" in the words; a page with
an unknown value is better than no page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

from failover_did import metric_names as m
from failover_did.alerts.wording import one_line, parse_time

ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"
STATES = frozenset({ALARM, OK, INSUFFICIENT_DATA})

# CloudWatch's own limits on what it sends; anything longer was not written by CloudWatch.
NAME_LIMIT = 255
DESCRIPTION_LIMIT = 1024
REASON_LIMIT = 1023
FIELD_LIMIT = 255
MAX_PERIOD = 7 * 86400  # seconds; CloudWatch evaluates at most a week
_NUMBER_TEXT = 40  # digits and signs of a datapoint quoted in the reason; more is not a measurement

_DATAPOINT = re.compile(r"\[(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?) \(")
_ALARM_ARN = re.compile(r"arn:aws:cloudwatch:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):\d{12}:alarm:(.+)")
_MESSAGE_ID = re.compile(r"[0-9a-fA-F-]{36}")


class Kind(Enum):
    """Which alarm a notification is about; the value is its name for people."""

    FAILOVER = "failover active"
    UNREACHABLE = "destination unreachable"
    UNVERIFIED = "destination unverified"
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
    (m.NAMESPACE, m.DESTINATION_UNVERIFIED): Kind.UNVERIFIED,
    ("AWS/Lambda", "Errors"): Kind.WEBHOOK_ERRORS,
    ("AWS/ApiGateway", "5xx"): Kind.API_5XX,
    ("AWS/ApiGateway", "5XXError"): Kind.API_5XX,
    (m.NAMESPACE, m.SIGNATURE_REJECTED): Kind.SIGNATURES,
    (m.NAMESPACE, m.FAILOVER_BUDGET_EXCEEDED): Kind.BUDGET,
    (m.NAMESPACE, m.HEALTH_CHECK_RUNS): Kind.HEALTH_CHECKER,
}


@dataclass(frozen=True)
class Alarm:
    """The parts of a CloudWatch alarm notification that the wording uses, each already one line."""

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
    period: int | None = None  # seconds; None when not given or not a sane whole number
    threshold: float | None = None

    @property
    def kind(self) -> Kind:
        return KINDS.get((self.namespace, self.metric), Kind.UNKNOWN)

    @property
    def value(self) -> float | None:
        """The newest datapoint CloudWatch quotes in its reason ("... datapoints [3.0 (28/11/26 10:00:00)] ...")."""
        found = _DATAPOINT.search(self.reason)
        if found is None or len(found.group(1)) > _NUMBER_TEXT:
            return None
        value = float(found.group(1))
        return value if math.isfinite(value) else None

    @property
    def console_url(self) -> str | None:
        """The alarm in the CloudWatch console, only for an ARN of CloudWatch's own shape (the region is part
        of the host name: a forged one must not choose where the link goes)."""
        found = _ALARM_ARN.fullmatch(self.arn)
        if found is None:
            return None
        region, name = found.group(1), quote(found.group(2), safe="")
        return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"


@dataclass(frozen=True)
class NotAnAlarm:
    """A message on the alarm topic that is not a CloudWatch alarm notification. Its text is never relayed:
    only its size and where to find it (the formatter's log, by SNS message id)."""

    size: int  # bytes (UTF-8)
    received: datetime
    message_id: str = ""  # the SNS MessageId when it has that shape


def is_problem(alarm: Alarm, state: str | None = None) -> bool:
    """Whether `state` (default: the alarm's new one) means trouble for this alarm: ALARM, and for the
    health checker also INSUFFICIENT_DATA (no runs reported at all)."""
    state = alarm.state if state is None else state
    return state == ALARM or (state == INSUFFICIENT_DATA and alarm.kind is Kind.HEALTH_CHECKER)


def wants_notice(alarm: Alarm) -> bool:
    """INSUFFICIENT_DATA says nothing to people, except for the health checker's alarm."""
    return alarm.state != INSUFFICIENT_DATA or alarm.kind is Kind.HEALTH_CHECKER


def parse_alarm(message: Mapping[str, Any], received: datetime | None = None) -> Alarm | None:
    """An alarm from CloudWatch's notification JSON; None unless it names the alarm and a known new state."""
    name = one_line(message.get("AlarmName"), NAME_LIMIT) if isinstance(message.get("AlarmName"), str) else ""
    state = _state(message.get("NewStateValue"))
    if not name or not state:
        return None
    raw = message.get("Trigger")
    trigger: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return Alarm(
        name=name,
        state=state,
        changed_at=parse_time(message.get("StateChangeTime")) or received or datetime.now(UTC),
        old_state=_state(message.get("OldStateValue")),
        reason=_text(message.get("NewStateReason"), REASON_LIMIT),
        description=_text(message.get("AlarmDescription"), DESCRIPTION_LIMIT),
        region=_text(message.get("Region"), FIELD_LIMIT),
        arn=_text(message.get("AlarmArn"), 2048),
        namespace=_text(trigger.get("Namespace"), FIELD_LIMIT),
        metric=_text(trigger.get("MetricName"), FIELD_LIMIT),
        period=_period(trigger.get("Period")),
        threshold=_finite(trigger.get("Threshold")),
    )


def of_record(record: object) -> Alarm | NotAnAlarm:
    """What an SNS record on the alarm topic carries."""
    sns_raw = record.get("Sns") if isinstance(record, Mapping) else None
    sns: Mapping[str, Any] = sns_raw if isinstance(sns_raw, Mapping) else {}
    text = sns.get("Message")
    text = text if isinstance(text, str) else ""
    received = parse_time(sns.get("Timestamp"))
    message = _json(text)
    if isinstance(message, Mapping):
        alarm = parse_alarm(message, received)
        if alarm is not None:
            return alarm
    message_id = sns.get("MessageId")
    return NotAnAlarm(
        size=len(text.encode("utf-8", "surrogatepass")),
        received=received or datetime.now(UTC),
        message_id=message_id if isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id) else "",
    )


def _json(text: str) -> object:
    try:
        # A number of thousands of digits is refused by int() (and would mean nothing here): read as infinite.
        return json.loads(text, parse_int=lambda digits: int(digits) if len(digits) <= _NUMBER_TEXT else math.inf)
    except (ValueError, RecursionError):
        return None


def _state(value: object) -> str:
    return value if isinstance(value, str) and value in STATES else ""


def _text(value: object, limit: int) -> str:
    return one_line(value, limit) if isinstance(value, str) else ""


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _period(value: object) -> int | None:
    number = _finite(value)
    if number is None or not number.is_integer() or not 0 < number <= MAX_PERIOD:
        return None
    return int(number)
