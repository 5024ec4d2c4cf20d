"""`failover-did rules ...`: validate a rules file, apply it to the table, inspect and delete rules."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from rich.table import Table

from failover_did_cli.args import NUMBER
from failover_did_cli.env import LOCAL_ENV, STACK_ENV, configure_aws, local_stack_hint
from failover_did_cli.fallback_publish import FallbackResult, NotConfigured, Publisher, config_from_env
from failover_did_cli.output import Page, matches_prefix, number_filter, paging, print_table

if TYPE_CHECKING:
    from failover_did.rules.model import Rule
    from failover_did.store.audit import RuleChange
    from failover_did.store.rules_store import Change, StoredRule

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
    audit_error: str | None = None  # why the audit events of the changes were not written

    def fallback_of(self, number: str) -> FallbackResult | None:
        return next((f for f in self.fallbacks if f.number == number), None)

    @property
    def failed_fallbacks(self) -> list[FallbackResult]:
        return [f for f in self.fallbacks if f.action == "failed"]


def apply_file(path: Path, *, prune: bool = False) -> list[Change]:
    """The table part of `rules apply` as a function."""
    return apply_with_audit(path, prune=prune)[0]


def apply_and_publish(path: Path, *, prune: bool = False, audit_by: str | None = None) -> Applied:
    """`rules apply` as a function: write the rules, then publish the static fallbacks of what is stored
    when a fallback bucket is configured. The local stack loads its rules through it too. With `audit_by`
    (who runs it), each number changed gets an audit event; a failure to write them is `audit_error`."""
    from failover_did_cli.fallback_publish import publish_after_apply

    changes, audit = apply_with_audit(path, prune=prune)
    audit_error = write_audit(audit, audit_by) if audit_by is not None else None
    try:
        publisher = Publisher(config_from_env())
    except NotConfigured as reason:
        return Applied(changes, not_published=str(reason), audit_error=audit_error)
    return Applied(changes, publish_after_apply(changes, publisher), audit_error=audit_error)


def apply_with_audit(
    path: Path, *, prune: bool, judged_alone: Mapping[str, Rule] | None = None
) -> tuple[list[Change], list[RuleChange]]:
    """Read the rules (the rules-set version first), judge the file against them, and write it only if
    nobody wrote the rules in between (rules_store.apply_rules). Returns the changes, and each number's
    rule before and after for the audit events. `judged_alone`: the file already read and judged with no
    stored numbers (the local stack reads it while its emulation starts); used only if none are stored."""
    from failover_did.store import rules_store
    from failover_did.store.audit import RuleChange

    with store_errors():
        snapshot = rules_store.read_snapshot()
        if judged_alone is not None and not snapshot.numbers:
            rules = dict(judged_alone)
        else:
            rules = read_rules(path, known_numbers=snapshot.numbers)
        changes = rules_store.apply_rules(rules, prune=prune, snapshot=snapshot)
    audit = [
        RuleChange(
            c.number,
            c.action,
            dict(snapshot.items[c.number].rule) if c.number in snapshot.items else None,
            rules[c.number].to_doc() if c.number in rules else None,
            c.version,
        )
        for c in changes
        if c.action in ("added", "changed", "deleted")
    ]
    return changes, audit


def some(numbers: Iterable[str], shown: int = 10) -> str:
    """Numbers for a one-line message: the first `shown`, then how many more."""
    listed = list(numbers)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more


def write_audit(changes: list[RuleChange], who: str) -> str | None:
    """Write the audit events of rule changes already made; returns why they could not be, or None."""
    from datetime import UTC, datetime

    from pynamodb.exceptions import PynamoDBException

    from failover_did.store.audit import record_rule_changes

    try:
        record_rule_changes(changes, who, datetime.now(UTC))
    except PynamoDBException as error:
        numbers = some(c.number for c in changes)
        return f"the rules were changed ({numbers}), but their audit events could not be written: {error.msg}"
    return None


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
@click.pass_context
def rules(ctx: click.Context) -> None:
    """Validate, apply and inspect failover rules."""
    if ctx.invoked_subcommand == "validate":
        return  # validate reaches for the stack itself and judges the file alone when it cannot
    configure_aws()


def stored_numbers_for_validate() -> tuple[frozenset[str] | None, str | None]:
    """The numbers a stack routes (so validate finds the loops apply would refuse): None with no stack set,
    or None and why when the stack cannot be reached."""
    if not (os.environ.get(LOCAL_ENV, "").strip() or os.environ.get(STACK_ENV, "").strip()):
        return None, None
    try:
        configure_aws()
        with store_errors():
            from failover_did.store import rules_store

            return frozenset(s.rule.number for s in rules_store.all_rules()), None
    except click.ClickException as error:
        return None, f"could not reach the stack, judged the file alone: {error.message}"


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check FILE without touching the table; exit 1 naming every problem.

    With a stack set (FAILOVER_DID_LOCAL or FAILOVER_DID_STACK) its stored numbers are read too, so a
    failover to a number already routed here is refused as a loop, as apply would; when the stack cannot
    be reached, one line says so and the file is judged alone.

    Loopback and private addresses are accepted with a warning unless ALLOW_PRIVATE_TARGETS (or
    FAILOVER_DID_LOCAL) says the deployment probes them."""
    from failover_did.rules.warnings import rule_warnings

    known, unreachable = stored_numbers_for_validate()
    if unreachable:
        click.echo(f"{file}: {unreachable}", err=True)
    parsed = read_rules(file, known_numbers=known or frozenset(), allow_private=True)
    for warning in rule_warnings(parsed, private_allowed=private_targets_allowed()):
        click.echo(f"{file}: warning: {warning}", err=True)
    against = "" if known is None else f" (checked against the {len(known)} number(s) stored in the stack)"
    click.echo(f"{file}: {len(parsed)} number(s) OK{against}")
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
    from failover_did_cli.identity import operator_identity

    applied = apply_and_publish(file, prune=prune, audit_by=operator_identity())
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
    if applied.audit_error:
        click.echo(f"Error: {applied.audit_error}", err=True)
    failed = applied.failed_fallbacks
    if failed:
        raise click.ClickException(
            f"the rules were applied, but {len(failed)} fallback document(s) could not be published "
            f"({some(f.number for f in failed)}); run it again"
        )
    if applied.audit_error:
        raise SystemExit(1)


def _sync_recipients() -> None:
    """Subscribe the stored rules' `notify:` recipients on the NotifyTopic, each filtered on its numbers."""
    from failover_did.notices.subscriptions import sync_rules
    from failover_did.store import rules_store
    from failover_did_cli.env import NOTIFY_TOPIC_ARN_ENV

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
@number_filter
@paging
def list_rules(prefix: str | None, page: Page) -> None:
    """List every number with its cascade (--prefix to narrow, --limit/--page to page)."""
    from failover_did.store import rules_store

    stored = with_store(
        lambda: sorted(
            (s for s in rules_store.all_rules() if matches_prefix(s.rule.number, prefix)), key=lambda s: s.rule.number
        )
    )
    shown = page.of(stored)
    table = Table("number", "primary", "failover", "triggers", "version", "updated")
    for column in table.columns:
        column.no_wrap = True
    for item in shown:
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
    click.echo(page.footer(len(stored), "number(s)"))


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


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@rules.command()
@click.argument("number", type=NUMBER)
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (for scripts).")
def delete(number: str, yes: bool) -> None:
    """Delete NUMBER's rule (calls to it then hear a short message) and its published fallback.

    Asks first; --yes skips the question (without a terminal to ask on, --yes is required)."""
    from failover_did.store import rules_store
    from failover_did.store.audit import RuleChange
    from failover_did_cli.identity import operator_identity

    if not yes:
        if not stdin_is_terminal():
            raise click.ClickException(f"not deleting {number}: no terminal to confirm on; pass --yes to delete it")
        current = with_store(lambda: rules_store.get_stored(number))
        if current is None:
            raise click.ClickException(f"no rule for {number}")
        cascade = " -> ".join(t.target for t in current.rule.tiers)
        if not click.confirm(f"Delete the rule of {number} ({cascade})? Its calls will then hear a short message"):
            raise click.ClickException(f"not deleted: {number} is unchanged")
    deleted = with_store(lambda: rules_store.delete_stored(number))
    if deleted is None:
        raise click.ClickException(f"no rule for {number}")
    click.echo(f"- {number} deleted")
    audit_error = write_audit(
        [RuleChange(number, "deleted", deleted.rule.to_doc(), None, deleted.version)], operator_identity()
    )
    if audit_error:
        click.echo(f"Error: {audit_error}", err=True)
    _delete_fallback(deleted)
    if audit_error:
        raise SystemExit(1)


def _delete_fallback(deleted: StoredRule) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from failover_did_cli.fallback_publish import describe_error

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
