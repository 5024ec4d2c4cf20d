"""A number: its status, each tier's health, today's missed calls and recent events; saving its rule from
the form (the optimistic lock `rules apply` uses, and an audit event naming the console user), adding one,
deleting one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PynamoDBException

from failover_did.call_record import CallRecord
from failover_did.event_words import describe
from failover_did.fallback_publish import NotConfigured, Publisher, config_from_env, publish_after_apply
from failover_did.routing import probe_target
from failover_did.settings import settings as service_settings
from failover_did.status_view import NumberView, midnight_utc, number_view
from failover_did.store import call_log, failovers, health_store, rules_store
from failover_did.store.audit import RuleChange, record_rule_changes
from failover_did.store.events import Event, events_of
from failover_did.store.rules_store import Change, ConcurrentEdit, StoredRule
from failover_did_console import forms
from failover_did_console.forms import GENERAL, Judgement, RuleForm

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
class Saved:
    version: int | None
    audit_error: str | None = None
    fallback_error: str | None = None  # why the number's static fallback document is not the saved rule's

    @property
    def warnings(self) -> list[str]:
        """Codes for the number's page: what the save could not do besides writing the rule."""
        return [code for code, error in (("audit", self.audit_error), ("fallback", self.fallback_error)) if error]


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
    if change.action not in ("added", "changed"):
        return Saved(change.version, fallback_error=publish_fallback([change]))
    before = dict(old.rule) if old is not None else None
    audit = RuleChange(number, change.action, before, judgement.rule.to_doc(), change.version)
    return Saved(change.version, _audit([audit], who, now), publish_fallback([change]))


def delete(number: str, who: str, now: datetime) -> tuple[StoredRule | None, Saved]:
    """Delete the number's rule (atomically against every apply) with its audit event and its published
    fallback documents; what was deleted (None when there was no rule) and what else could not be done."""
    deleted = rules_store.delete_stored(number)
    if deleted is None:
        return None, Saved(None)
    audit = _audit([RuleChange(number, "deleted", deleted.rule.to_doc(), None, deleted.version)], who, now)
    gone = Change(number, "deleted", None, deleted.fallback_key)
    return deleted, Saved(None, audit, publish_fallback([gone]))


def publish_fallback(changes: list[Change]) -> str | None:
    """Bring the number's static fallback documents in line with the table, as `rules apply` does; why it
    could not be done, or None. Without a fallback bucket configured there is nothing to keep in line."""
    try:
        publisher = Publisher(config_from_env())
    except NotConfigured:
        return None
    failed = [r for r in publish_after_apply(changes, publisher) if r.action == "failed"]
    return f"the static fallback of {failed[0].number} was not published: {failed[0].error}" if failed else None


def _audit(changes: list[RuleChange], who: str, now: datetime) -> str | None:
    try:
        record_rule_changes(changes, who, now)
    except PynamoDBException as error:
        return f"the change was saved, but its audit event could not be written: {error.msg}"
    return None
