"""Missed-call recipients, for `rules apply` and the console's saves alike: each rule's `notify:` becomes
SNS subscriptions on the NotifyTopic that take only that number's notices.

SNS keeps one subscription per (topic, protocol, endpoint), so an address listed under several numbers
gets one subscription whose filter policy names them all: {"number": ["+1...", "+1..."]}. Only the
subscriptions whose filter policy is on `number` are ours to change; the stack's default subscriptions
(filtered on `audience`) and anything else on the topic are left alone. Idempotent: missing endpoints are
subscribed, changed ones get their filter policy rewritten, ones no rule names any more are unsubscribed.
An email subscription stays "pending" until its recipient follows the link SNS mails them; until then its
filter policy cannot be changed, and it is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from failover_did.rules.model import Rule

PENDING = "PendingConfirmation"

Action = Literal["subscribed", "refiltered", "unsubscribed", "unchanged", "pending", "conflict"]


@dataclass(frozen=True)
class Existing:
    arn: str
    protocol: str
    endpoint: str
    numbers: tuple[str, ...] | None  # None: not one of ours (no `number` filter), or pending (unknown)


@dataclass(frozen=True)
class Change:
    action: Action
    protocol: str
    endpoint: str
    numbers: tuple[str, ...]
    arn: str = ""

    def line(self) -> str:
        numbers = ", ".join(self.numbers)
        what = {
            "subscribed": f"subscribed for {numbers}",
            "refiltered": f"now receives {numbers}",
            "unsubscribed": "unsubscribed (no rule names it any more)",
            "unchanged": f"receives {numbers}",
            "pending": f"waits for its owner to confirm the subscription SNS sent (for {numbers})",
            "conflict": (
                f"is one of the stack's default recipients, which cannot also receive {numbers} only; "
                "it keeps receiving the numbers without notify"
            ),
        }[self.action]
        return f"  notify: {self.protocol} {self.endpoint} {what}"


def desired(rules: Iterable[Rule]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(protocol, endpoint) -> the numbers it is to receive."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        if rule.notify is None:
            continue
        for email in rule.notify.email:
            wanted.setdefault(("email", email), set()).add(rule.number)
        for number in rule.notify.sms:
            wanted.setdefault(("sms", number), set()).add(rule.number)
    return {key: tuple(sorted(numbers)) for key, numbers in wanted.items()}


def filter_policy(numbers: Iterable[str]) -> str:
    return json.dumps({"number": sorted(numbers)}, separators=(",", ":"))


def existing(sns: Any, topic_arn: str) -> list[Existing]:
    found: list[Existing] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page.get("Subscriptions", []):
            arn, protocol, endpoint = sub["SubscriptionArn"], sub["Protocol"], sub["Endpoint"]
            numbers: tuple[str, ...] | None = None
            if arn != PENDING and protocol in ("email", "sms"):
                attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
                numbers = _numbers_of(attributes.get("FilterPolicy"))
            found.append(Existing(arn, protocol, endpoint, numbers))
    return found


def _numbers_of(policy: object) -> tuple[str, ...] | None:
    try:
        parsed = json.loads(policy) if isinstance(policy, str) else None
    except ValueError:
        return None
    if not isinstance(parsed, dict) or set(parsed) != {"number"} or not isinstance(parsed["number"], list):
        return None
    return tuple(sorted(str(n) for n in parsed["number"]))


def plan(wanted: Mapping[tuple[str, str], tuple[str, ...]], present: Iterable[Existing]) -> list[Change]:
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for sub in present:
        key = (sub.protocol, sub.endpoint)
        numbers = wanted.get(key)
        if sub.arn == PENDING:
            if numbers is not None:
                seen.add(key)
                changes.append(Change("pending", *key, numbers))
            continue
        if sub.numbers is None:
            if numbers is not None:
                seen.add(key)
                changes.append(Change("conflict", *key, numbers, sub.arn))
            continue
        if numbers is None:
            changes.append(Change("unsubscribed", *key, sub.numbers, sub.arn))
            continue
        seen.add(key)
        changes.append(Change("unchanged" if numbers == sub.numbers else "refiltered", *key, numbers, sub.arn))
    for key, numbers in sorted(wanted.items()):
        if key not in seen:
            changes.append(Change("subscribed", *key, numbers))
    return changes


def carry_out(sns: Any, topic_arn: str, changes: Iterable[Change]) -> list[Change]:
    done: list[Change] = []
    for change in changes:
        if change.action == "subscribed":
            response = sns.subscribe(
                TopicArn=topic_arn,
                Protocol=change.protocol,
                Endpoint=change.endpoint,
                Attributes={"FilterPolicyScope": "MessageAttributes", "FilterPolicy": filter_policy(change.numbers)},
                ReturnSubscriptionArn=True,
            )
            change = Change("subscribed", change.protocol, change.endpoint, change.numbers, response["SubscriptionArn"])
        elif change.action == "refiltered":
            sns.set_subscription_attributes(
                SubscriptionArn=change.arn, AttributeName="FilterPolicy", AttributeValue=filter_policy(change.numbers)
            )
        elif change.action == "unsubscribed":
            sns.unsubscribe(SubscriptionArn=change.arn)
        done.append(change)
    return done


def sync(sns: Any, topic_arn: str, rules: Iterable[Rule]) -> list[Change]:
    """Make the topic's per-number subscriptions what `rules` (all the stored rules) say."""
    return carry_out(sns, topic_arn, plan(desired(rules), existing(sns, topic_arn)))


def sync_rules(topic_arn: str, rules: Iterable[Rule]) -> list[Change]:
    """`sync` with the SNS client of the topic's region."""
    import boto3

    region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else ""
    sns = boto3.client("sns", region_name=region) if region else boto3.client("sns")
    return sync(sns, topic_arn, rules)
