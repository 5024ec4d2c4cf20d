"""A number: its status, each tier's health, today's missed calls and recent events; saving its rule from
the form (the optimistic lock `rules apply` uses, and an audit event naming the console user), adding one,
deleting one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PynamoDBException

from failover_did.call_record import CallRecord
from failover_did.event_words import describe
from failover_did.fallback_publish import (
    FALLBACK_BUCKET_ENV,
    NotConfigured,
    Publisher,
    config_from_env,
    publish_after_apply,
)
from failover_did.notices import subscriptions
from failover_did.routing import probe_target
from failover_did.rules.model import Rule
from failover_did.settings import settings as service_settings
from failover_did.status_view import NumberView, midnight_utc, number_view
from failover_did.store import call_log, failovers, health_store, rules_store
from failover_did.store.audit import RuleChange, record_rule_changes
from failover_did.store.events import Event, events_of
from failover_did.store.rules_store import Change, ConcurrentEdit, StoredRule
from failover_did.store.tables import RuleItem
from failover_did_console import forms
from failover_did_console.forms import GENERAL, Judgement, RuleForm
from failover_did_console.web import logger

RECENT_EVENTS = 20
EVENT_DAYS = 7
CHANGED_SINCE = (
    "This rule was changed by someone else since you opened it; nothing was saved. "
    "Open it again to see their change, then make yours."
)
DELETED_SINCE = "This number's rule was deleted by someone else since you opened it; nothing was saved."


@dataclass(frozen=True)
class NumberPage:
    stored: StoredRule
    view: NumberView
    missed: list[CallRecord]
    events: list[tuple[Event, str]]  # newest first, with their words
    failovers: int


def number_page(number: str, now: datetime) -> NumberPage | None:
    """Everything the number's page shows, or None when it has no rule (a few reads, by key)."""
    stored = rules_store.get_stored(number)
    if stored is None:
        return None
    targets = [probe_target(t) for t in stored.rule.tiers if t.is_judged]
    view = number_view(stored.rule, health_store.health_of(targets))
    missed = [c for c in call_log.calls_of(number, midnight_utc(now)) if c.missed and not c.test]
    recent = sorted(events_of(number, now - timedelta(days=EVENT_DAYS)), key=lambda e: e.at, reverse=True)
    events = [(e, describe(e.kind, e.detail)) for e in recent[:RECENT_EVENTS]]
    count = failovers.counts_this_month([number], now).get(number, 0)
    return NumberPage(stored, view, missed, events, count)


@dataclass(frozen=True)
class Recipients:
    """What a save did to the missed-call recipients' SNS subscriptions (`rules apply`'s sync)."""

    changes: tuple[subscriptions.Change, ...] = ()
    error: str | None = None  # why they could not be brought in line (the rule is saved all the same)
    unconfigured: bool = False  # the rule names recipients, but the console has no notify topic


@dataclass(frozen=True)
class Saved:
    version: int | None
    audit_error: str | None = None
    fallback_error: str | None = None  # why the number's static fallback document is not the saved rule's
    fallback_unconfigured: bool = False  # no fallback bucket: the document was not republished
    recipients: Recipients = Recipients()

    @property
    def warnings(self) -> list[str]:
        """Codes for the number's page: what the save could not do besides writing the rule."""
        codes = [code for code, error in (("audit", self.audit_error), ("fallback", self.fallback_error)) if error]
        if self.fallback_unconfigured:
            codes.append("fallback-unset")
        if self.recipients.error:
            codes.append("notify")
        if self.recipients.unconfigured:
            codes.append("notify-unset")
        return codes


def save(form: RuleForm, number: str, who: str, now: datetime, *, new: bool) -> Judgement | Saved:
    """Judge the form and write the rule if nobody changed the rules since the form was opened (its
    `version`) or since they were read here; the change gets an audit event `by` the console user."""
    snapshot = rules_store.read_snapshot()
    old = snapshot.items.get(number)
    if new and old is not None:
        return Judgement(None, {"number": [f"{number} already has a rule; open it from Numbers to edit it"]})
    if not new:
        if old is None:
            return Judgement(None, {GENERAL: [DELETED_SINCE]})
        if str(int(old.version or 0)) != form.version:
            return Judgement(None, {GENERAL: [CHANGED_SINCE]})
    judgement = forms.judge(
        form, number, known_numbers=snapshot.numbers, allow_private=service_settings().allow_private_targets
    )
    if judgement.rule is None:
        return judgement
    try:
        changes = rules_store.apply_rules({number: judgement.rule}, snapshot=snapshot)
    except ConcurrentEdit:
        return Judgement(None, {GENERAL: [CHANGED_SINCE]})
    change = next(c for c in changes if c.number == number)
    before_rule = _rule_of(old)
    if change.action not in ("added", "changed"):
        fallback = publish_fallback([change])
        return Saved(change.version, None, *fallback, sync_recipients(before_rule, judgement.rule))
    before = dict(old.rule) if old is not None else None
    audit = RuleChange(number, change.action, before, judgement.rule.to_doc(), change.version)
    audit_error = _audit([audit], who, now)
    fallback = publish_fallback([change])
    return Saved(change.version, audit_error, *fallback, sync_recipients(before_rule, judgement.rule))


def delete(number: str, who: str, now: datetime) -> tuple[StoredRule | None, Saved]:
    """Delete the number's rule (atomically against every apply) with its audit event and its published
    fallback documents; what was deleted (None when there was no rule) and what else could not be done."""
    deleted = rules_store.delete_stored(number)
    if deleted is None:
        return None, Saved(None)
    audit = _audit([RuleChange(number, "deleted", deleted.rule.to_doc(), None, deleted.version)], who, now)
    gone = Change(number, "deleted", None, deleted.fallback_key)
    return deleted, Saved(None, audit, *publish_fallback([gone]), sync_recipients(deleted.rule, None))


def publish_fallback(changes: list[Change]) -> tuple[str | None, bool]:
    """Bring the number's static fallback documents in line with the table, as `rules apply` does: why it
    could not be done (or None), and whether it was not even tried because no fallback bucket is configured
    (logged: a Voice Fallback URL left serving an old cascade is a hidden risk of a missed call)."""
    try:
        publisher = Publisher(config_from_env())
    except NotConfigured as reason:
        logger.warning("static fallback not republished", extra={"reason": str(reason)})
        return None, not os.environ.get(FALLBACK_BUCKET_ENV, "").strip()
    failed = [r for r in publish_after_apply(changes, publisher) if r.action == "failed"]
    if failed:
        return f"the static fallback of {failed[0].number} was not published: {failed[0].error}", False
    return None, False


def _rule_of(item: RuleItem | None) -> Rule | None:
    if item is None:
        return None
    try:
        return Rule.from_doc(item.number, dict(item.rule))
    except (KeyError, TypeError, ValueError):  # unreadable: the sync still follows every stored rule
        return None


def _recipients(rule: Rule | None) -> set[tuple[str, str]]:
    return set(subscriptions.desired([rule] if rule is not None else []))


def sync_recipients(before: Rule | None, after: Rule | None) -> Recipients:
    """Bring the NotifyTopic's per-number subscriptions in line with every stored rule, as `rules apply`
    does, when the saved number names recipients before or after the save; the changes that concern this
    number's recipients. A failure is reported, never raised: the rule is saved either way."""
    mine = _recipients(before) | _recipients(after)
    if not mine:
        return Recipients()
    topic_arn = service_settings().notify_topic_arn
    if not topic_arn:
        logger.warning("notify recipients not subscribed: no NOTIFY_TOPIC_ARN")
        return Recipients(unconfigured=bool(_recipients(after)))
    try:
        stored = [item.rule for item in rules_store.all_rules()]
        changes = subscriptions.sync_rules(topic_arn, stored)
    except Exception as error:  # botocore's ClientError and BotoCoreError, a table read failing
        logger.error("notify recipients not subscribed", extra={"reason": str(error)[:300]})
        return Recipients(error=str(error)[:300])
    shown = [c for c in changes if (c.protocol, c.endpoint) in mine and c.action != "unchanged"]
    for change in shown:
        logger.info("notify recipient", extra={"action": change.action, "protocol": change.protocol})
    return Recipients(tuple(shown))


def _audit(changes: list[RuleChange], who: str, now: datetime) -> str | None:
    try:
        record_rule_changes(changes, who, now)
    except PynamoDBException as error:
        return f"the change was saved, but its audit event could not be written: {error.msg}"
    return None
