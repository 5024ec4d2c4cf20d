"""`failover-did rules ...`: validate a rules file, apply it to the table, inspect and delete rules."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from rich.table import Table

from failover_did_cli.args import NUMBER
from failover_did_cli.env import LOCAL_ENV, STACK_ENV, configure_aws, local_stack_hint
from failover_did_cli.fallback_publish import FallbackResult, NotConfigured, Publisher, config_from_env
from failover_did_cli.output import print_table

if TYPE_CHECKING:
    from failover_did.rules.model import Rule
    from failover_did.store.rules_store import Change

T = TypeVar("T")
SYMBOL = {"added": "+", "changed": "~", "unchanged": "=", "deleted": "-", "kept": "!"}


def read_rules(
    path: Path, known_numbers: set[str] | frozenset[str] = frozenset(), *, allow_private: bool | None = None
) -> dict[str, Rule]:
    """Parse and judge a rules file; a refusal exits 1 with every problem named, each line naming the file
    once. `allow_private` defaults to what the target deployment allows (`private_targets_allowed`)."""
    from failover_did.rules.loading import MAX_FILE_BYTES, file_too_large
    from failover_did.rules.validate import RulesError, parse_rules_yaml

    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more: the path may be huge or endless
        if len(data) > MAX_FILE_BYTES:
            size = path.stat().st_size if path.is_file() else None
            raise click.ClickException(f"{path}: {file_too_large(size if size and size > MAX_FILE_BYTES else None)}")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot read {path}: {error}") from error
    if allow_private is None:
        allow_private = private_targets_allowed()
    try:
        return parse_rules_yaml(text, source=str(path), known_numbers=known_numbers, allow_private=allow_private)
    except RulesError as error:
        for line in error.lines():
            click.echo(line, err=True)
        raise SystemExit(1) from None


def private_targets_allowed() -> bool:
    """Whether the deployment the rules go to probes loopback and private addresses: ALLOW_PRIVATE_TARGETS
    here, or a local stack (which tests on loopback and sets it for itself)."""
    from failover_did.settings import SettingError, settings

    if os.environ.get(LOCAL_ENV):
        return True
    try:
        return settings().allow_private_targets
    except SettingError as error:
        raise click.ClickException(str(error)) from error


@dataclass(frozen=True)
class Applied:
    """What `rules apply` did: the table's changes and the fallback documents' publishing."""

    changes: list[Change]
    fallbacks: list[FallbackResult] = field(default_factory=list)
    not_published: str | None = None  # why no fallback was published at all

    def fallback_of(self, number: str) -> FallbackResult | None:
        return next((f for f in self.fallbacks if f.number == number), None)

    @property
    def failed_fallbacks(self) -> list[FallbackResult]:
        return [f for f in self.fallbacks if f.action == "failed"]


def apply_file(path: Path, *, prune: bool = False) -> list[Change]:
    """The table part of `rules apply` as a function."""
    return _apply_rules(path, prune=prune)[1]


def apply_and_publish(path: Path, *, prune: bool = False) -> Applied:
    """`rules apply` as a function: write the rules, then publish their static fallbacks when a fallback
    bucket is configured. The local stack loads its rules through it too."""
    from failover_did_cli.fallback_publish import publish_after_apply

    rules, changes = _apply_rules(path, prune=prune)
    try:
        publisher = Publisher(config_from_env())
    except NotConfigured as reason:
        return Applied(changes, not_published=str(reason))
    return Applied(changes, publish_after_apply(changes, rules, publisher))


def _apply_rules(path: Path, *, prune: bool) -> tuple[dict[str, Rule], list[Change]]:
    from failover_did.store import rules_store

    with store_errors():
        stored = {item.rule.number for item in rules_store.all_rules()}
        rules = read_rules(path, known_numbers=stored)
        return rules, rules_store.apply_rules(rules, prune=prune)


FALLBACK_NOTE = {
    "published": "",
    "republished": " (published again: it was missing or out of date)",
    "deleted": " deleted",
}


def fallback_line(result: FallbackResult) -> str | None:
    """The `  fallback: ...` line under a change, or None when there is nothing to say."""
    if result.action == "failed":
        return f"  fallback: NOT published: {result.error}"
    if result.action in FALLBACK_NOTE:
        return f"  fallback: {result.url}{FALLBACK_NOTE[result.action]}"
    return None


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn storage failures into one readable line instead of a traceback."""
    from pynamodb.exceptions import PynamoDBException

    from failover_did.store.rules_store import ConcurrentEdit

    try:
        yield
    except ConcurrentEdit as error:
        raise click.ClickException(str(error)) from error
    except PynamoDBException as error:
        local = os.environ.get(LOCAL_ENV, "").strip()
        if local:
            raise click.ClickException(f"the rules table cannot be reached: {local_stack_hint(local)}") from error
        hint = f" (for the local stack, export {LOCAL_ENV} as it prints; for a deployed one, {STACK_ENV})"
        raise click.ClickException(f"the rules table cannot be reached: {error.msg}{hint}") from error


def with_store(fn: Callable[[], T]) -> T:
    with store_errors():
        return fn()


@click.group()
def rules() -> None:
    """Validate, apply and inspect failover rules."""
    configure_aws()


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check FILE without touching the table; exit 1 naming every problem.

    Loopback and private addresses are accepted with a warning unless ALLOW_PRIVATE_TARGETS (or
    FAILOVER_DID_LOCAL) says the deployment probes them."""
    from failover_did.rules.warnings import rule_warnings

    parsed = read_rules(file, allow_private=True)
    for warning in rule_warnings(parsed, private_allowed=private_targets_allowed()):
        click.echo(f"{file}: warning: {warning}", err=True)
    click.echo(f"{file}: {len(parsed)} number(s) OK")
    for number, rule in sorted(parsed.items()):
        click.echo(f"  {number}: " + " -> ".join(t.target for t in rule.tiers))


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Also delete stored numbers that FILE does not list.")
def apply(file: Path, prune: bool) -> None:
    """Write FILE's rules to the table and print what changed.

    With a fallback bucket (FAILOVER_DID_STACK, FAILOVER_DID_LOCAL, or FALLBACK_BUCKET and FALLBACK_BASE_URL),
    each number's static fallback TwiML is published too and its URL printed: set it as the number's
    Voice Fallback URL (HTTP GET)."""
    applied = apply_and_publish(file, prune=prune)
    changes = applied.changes
    for change in changes:
        version = f" (version {change.version})" if change.version is not None else ""
        note = " - not in the file, kept (--prune deletes it)" if change.action == "kept" else ""
        click.echo(f"{SYMBOL[change.action]} {change.number} {change.action}{version}{note}")
        result = applied.fallback_of(change.number)
        line = fallback_line(result) if result else None
        if line:
            click.echo(line)
    counts = {action: sum(c.action == action for c in changes) for action in SYMBOL}
    click.echo(", ".join(f"{n} {action}" for action, n in counts.items() if n) or "no rules")
    if applied.not_published:
        click.echo(f"no fallback published: {applied.not_published}")
    _sync_recipients()
    failed = applied.failed_fallbacks
    if failed:
        raise click.ClickException(
            f"the rules were applied, but {len(failed)} fallback document(s) could not be published "
            f"({', '.join(f.number for f in failed)}); run it again"
        )


def _sync_recipients() -> None:
    """Subscribe the stored rules' `notify:` recipients on the NotifyTopic, each filtered on its numbers."""
    from failover_did.store import rules_store
    from failover_did_cli.env import NOTIFY_TOPIC_ARN_ENV
    from failover_did_cli.notify_subscriptions import sync_rules

    stored = with_store(lambda: [item.rule for item in rules_store.all_rules()])
    topic_arn = os.environ.get(NOTIFY_TOPIC_ARN_ENV, "").strip()
    if not topic_arn:
        if any(rule.notify for rule in stored):
            click.echo(f"no notify recipients subscribed: {NOTIFY_TOPIC_ARN_ENV} is not set (set {STACK_ENV})")
        return
    try:
        changes = sync_rules(topic_arn, stored)
    except Exception as error:  # botocore's ClientError and BotoCoreError
        if not any(rule.notify for rule in stored):
            return  # nobody to subscribe, and the topic cannot be read to find leftovers: nothing to say
        raise click.ClickException(
            f"the rules were applied, but their notify recipients could not be subscribed ({error}); run it again"
        ) from error
    for change in changes:
        click.echo(change.line())


@rules.command(name="list")
def list_rules() -> None:
    """List every number with its cascade."""
    from failover_did.store import rules_store

    stored = with_store(lambda: sorted(rules_store.all_rules(), key=lambda s: s.rule.number))
    table = Table("number", "primary", "failover", "triggers", "version", "updated")
    for column in table.columns:
        column.no_wrap = True
    for item in stored:
        rule = item.rule
        table.add_row(
            rule.number,
            rule.primary.target,
            "\n".join(t.target for t in rule.failover) or "-",
            ", ".join(sorted(rule.triggers)),
            str(item.version),
            item.updated_at.strftime("%Y-%m-%d %H:%M:%SZ") if item.updated_at else "-",
        )
    print_table(table)
    click.echo(f"{len(stored)} number(s)")


@rules.command()
@click.argument("number", type=NUMBER)
def show(number: str) -> None:
    """Print NUMBER's rule in the rules-file format."""
    from failover_did.rules.validate import rules_to_yaml
    from failover_did.store import rules_store

    item = with_store(lambda: rules_store.get_stored(number))
    if item is None:
        raise click.ClickException(f"no rule for {number}")
    updated = item.updated_at.isoformat() if item.updated_at else "unknown"
    click.echo(f"# version {item.version}, updated {updated}")
    click.echo(f"# fallback: {describe_fallback(item.rule, item.fallback_key)}")
    click.echo(rules_to_yaml({number: item.rule}), nl=False)


def describe_fallback(rule: Rule, key: str | None) -> str:
    """The number's fallback URL for `rules show`, or why there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    from failover_did_cli.fallback_publish import describe_error

    try:
        publisher = Publisher(config_from_env())
    except NotConfigured as reason:
        return f"none ({reason})"
    if key is None:
        return "none yet (`rules apply` publishes it)"
    url = publisher.url(key)
    try:
        current = publisher.is_current(rule, key)
    except (ClientError, BotoCoreError) as error:
        return f"{url} (cannot check it: {describe_error(error)})"
    return url if current else f"{url} (missing or out of date: run `rules apply`)"


@rules.command()
@click.argument("number", type=NUMBER)
def delete(number: str) -> None:
    """Delete NUMBER's rule (calls to it then hear a short message) and its published fallback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from failover_did.store import rules_store
    from failover_did_cli.fallback_publish import describe_error

    deleted = with_store(lambda: rules_store.delete_stored(number))
    if deleted is None:
        raise click.ClickException(f"no rule for {number}")
    click.echo(f"- {number} deleted")
    if deleted.fallback_key is None:
        return
    try:
        publisher = Publisher(config_from_env())
    except NotConfigured as reason:
        click.echo(f"  fallback: not deleted ({reason})")
        return
    url = publisher.url(deleted.fallback_key)
    try:
        publisher.delete(deleted.fallback_key, deleted.rule.number)
    except (ClientError, BotoCoreError) as error:
        raise click.ClickException(
            f"the rule was deleted, but its fallback {url} was not: {describe_error(error)}"
        ) from error
    click.echo(f"  fallback: {url} deleted")
