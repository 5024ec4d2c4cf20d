"""PynamoDB models of the tables that template.yaml defines (the template is the source of truth;
tests/unit/test_template.py checks that these keys match it). Table names come from the environment
the template sets on each function."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from botocore.session import Session, get_session
from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import base as pynamodb_base
from pynamodb.models import Model

from failover_did.settings import DYNAMODB_TIMEOUT_ENV, dynamodb_timeout

if TYPE_CHECKING:
    from botocore.loaders import Loader

RULES_TABLE_ENV = "RULES_TABLE_NAME"
CALLS_TABLE_ENV = "CALLS_TABLE_NAME"
HEALTH_TABLE_ENV = "HEALTH_TABLE_NAME"
EVENTS_TABLE_ENV = "EVENTS_TABLE_NAME"
CALL_LOG_TABLE_ENV = "CALL_LOG_TABLE_NAME"


TIMEOUT_ENV = DYNAMODB_TIMEOUT_ENV
# The webhook answers within Twilio's 15 s and should within 2 s even when DynamoDB hangs: one try and
# one retry of at most 0.5 s each, then the last known rule or the static fallback. The operator's
# commands set a longer timeout (failover_did_cli.env.configure_aws).
TIMEOUT_SECONDS = dynamodb_timeout(os.environ)


_shared_loader: list[Loader] = []


def botocore_session() -> Session:
    """A new botocore session that reads the API's models (endpoints, DynamoDB) through one loader per process.
    PynamoDB makes a session for each model's connection, and each would read and parse those files anew:
    about a tenth of a second each, once per table a process touches. Every session made here shares the
    first one's loader, which keeps what it read."""
    session = get_session()
    if _shared_loader:
        session.register_component("data_loader", _shared_loader[0])
    else:
        _shared_loader.append(session.get_component("data_loader"))
    return session


pynamodb_base.get_session = botocore_session  # type: ignore[attr-defined]  # where PynamoDB looks it up


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class _Connection:
    """Connection settings every table shares (each model's Meta adds its table name)."""

    region = aws_region()
    max_retry_attempts = 1
    connect_timeout_seconds = TIMEOUT_SECONDS
    read_timeout_seconds = TIMEOUT_SECONDS


class RuleItem(Model):
    """One number's rule, kept in the rules-file shape; `version` gives optimistic locking."""

    class Meta(_Connection):
        table_name = os.environ.get(RULES_TABLE_ENV, "failover-did-rules")

    number = UnicodeAttribute(hash_key=True)
    rule = JSONAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    # The unguessable part of the number's static fallback URL (set on first publish, then kept).
    fallback_key = UnicodeAttribute(null=True)
    version = VersionAttribute()


class RulesSetItem(Model):
    """The rules as a whole, one item in the rules table under a key no number can have (RULES_SET_KEY):
    every apply and delete bumps `version` in the same transaction as its rule writes, so of two that
    read the same rules only the first can write. A large apply holds `lock_owner` until `lock_expires`."""

    class Meta(_Connection):
        table_name = os.environ.get(RULES_TABLE_ENV, "failover-did-rules")

    number = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(null=True)
    last_apply = UnicodeAttribute(null=True)  # the token of the write that set this version
    lock_owner = UnicodeAttribute(null=True)
    lock_expires = NumberAttribute(null=True)  # epoch seconds
    version = VersionAttribute()


RULES_SET_KEY = "#rules-set"  # numbers are E.164 ("+..."): a key starting with "#" is never a rule


class CallItem(Model):
    """Short-lived per-call facts (a screened callee's acceptance); expire through the table's TTL."""

    class Meta(_Connection):
        table_name = os.environ.get(CALLS_TABLE_ENV, "failover-did-calls")

    call_sid = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute()


class HealthShard(Model):
    """The health of the probed destinations whose names hash to one shard (health_store.shard_key): a map
    target -> compact state (a JSON string, health_store.encode) with its own write counter `v`. `version`
    counts every write to the shard: the checker rewrites a whole shard conditional on it, and a live
    call's write updates one entry conditional on that entry being as read (and bumps `version` too), so
    neither ever loses the other's counts. The same table holds the run marker (health_store.RUN_MARKER)."""

    class Meta(_Connection):
        table_name = os.environ.get(HEALTH_TABLE_ENV, "failover-did-health")
        max_pool_connections = 32  # the checker's concurrent shard writers (health/checker.py WRITERS)

    target = UnicodeAttribute(hash_key=True)  # the shard's key "#health#NNN", or the run marker's
    # target -> compact state; a raw (untyped) map, so one entry can be updated on its own document path
    targets: MapAttribute[str, Any] = MapAttribute(default=dict)  # type: ignore[no-untyped-call]
    checked_at = UnicodeAttribute(null=True)  # the run marker's: when the last checker run finished
    reason = UnicodeAttribute(null=True)  # the run marker's: "<n> targets"
    version = VersionAttribute()


class EventItem(Model):
    """The event log: what happened to a number (failover, destination unreachable/recovered, rule changed).
    The sort key starts with the ISO time, so a number's events read in order."""

    class Meta(_Connection):
        table_name = os.environ.get(EVENTS_TABLE_ENV, "failover-did-events")

    number = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # "<ISO time>#<event id>"
    kind = UnicodeAttribute()
    detail = JSONAttribute()
    expires_at = NumberAttribute()


class FailoverCount(Model):
    """A number's failovers in one month (UTC), kept in the events table beside its events under the
    sort key "count#YYYY-MM" (after every ISO time, so time-ranged event queries never see it)."""

    class Meta(_Connection):
        table_name = os.environ.get(EVENTS_TABLE_ENV, "failover-did-events")

    number = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    failovers = NumberAttribute(default=0)
    budget_alerted = UnicodeAttribute(null=True)  # when the budget alarm metric was sent this month
    expires_at = NumberAttribute(null=True)


class CallLogItem(Model):
    """The call log: one item per call, keyed by CallSid so every webhook of the call (the recording
    callback carries no number) updates the same item. Expires like the events (DynamoDB TTL)."""

    class Meta(_Connection):
        table_name = os.environ.get(CALL_LOG_TABLE_ENV, "failover-did-call-log")

    call_sid = UnicodeAttribute(hash_key=True)
    number = UnicodeAttribute(null=True)
    caller = UnicodeAttribute(null=True)
    started = UnicodeAttribute(null=True)  # ISO time, UTC
    day = UnicodeAttribute(null=True)  # the UTC date `started` falls on
    ended = UnicodeAttribute(null=True)
    call_seconds = NumberAttribute(null=True)  # CallDuration from the status callback
    outcome = UnicodeAttribute(null=True)  # set once, when the call is closed
    closed_at = UnicodeAttribute(null=True)  # when the outcome was decided: written once per call
    answered_by = UnicodeAttribute(null=True)
    # hop ("1", "2", ...) -> {"tier": n, "target": ..., "outcome": DialCallStatus, "sip_code": n}
    # `tiers`: a map written by path with raw UpdateItem expressions (store/call_log.py)
    final_at = UnicodeAttribute(null=True)  # when the caller reached the final treatment
    voicemail = BooleanAttribute(null=True)  # ... and it records a message
    unknown_number = BooleanAttribute(null=True)
    recording_url = UnicodeAttribute(null=True)
    recording_seconds = NumberAttribute(null=True)
    recording_status = UnicodeAttribute(null=True)
    transcript = UnicodeAttribute(null=True)  # Twilio's transcription of the voicemail, one line
    transcription_status = UnicodeAttribute(null=True)
    test = BooleanAttribute(null=True)
    expires_at = NumberAttribute()
    # Indexes (template.yaml): "by-number" (number, started) and "by-day" (day, started), all attributes.
