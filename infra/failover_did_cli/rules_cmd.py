"""`failover-did rules ...`: validate a rules file, apply it to the table, inspect and delete rules."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from rich.console import Console
from rich.table import Table

from failover_did_cli.args import NUMBER
from failover_did_cli.env import LOCAL_ENV, use_local_stack_if_set

if TYPE_CHECKING:
    from failover_did.rules.model import Rule
    from failover_did.store.rules_store import Change

T = TypeVar("T")
SYMBOL = {"added": "+", "changed": "~", "unchanged": "=", "deleted": "-", "kept": "!"}


def read_rules(path: Path, known_numbers: set[str] | frozenset[str] = frozenset()) -> dict[str, Rule]:
    """Parse and judge a rules file; a refusal exits 1 with every problem named."""
    from failover_did.rules.validate import RulesError, parse_rules_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot read {path}: {error}") from error
    try:
        return parse_rules_yaml(text, source=str(path), known_numbers=known_numbers)
    except RulesError as error:
        for problem in error.problems:
            click.echo(f"{path}: {problem}", err=True)
        raise SystemExit(1) from None


def apply_file(path: Path, *, prune: bool = False) -> list[Change]:
    """`rules apply` as a function: the local stack loads its rules through it too."""
    from failover_did.store import rules_store

    with store_errors():
        stored = {item.rule.number for item in rules_store.all_rules()}
        rules = read_rules(path, known_numbers=stored)
        return rules_store.apply_rules(rules, prune=prune)


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
        hint = "" if use_local_stack_if_set() else f" (for the local stack, export {LOCAL_ENV} as it prints)"
        raise click.ClickException(f"the rules table cannot be reached: {error.msg}{hint}") from error


def with_store(fn: Callable[[], T]) -> T:
    with store_errors():
        return fn()


@click.group()
def rules() -> None:
    """Validate, apply and inspect failover rules."""
    use_local_stack_if_set()


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check FILE without touching the table; exit 1 naming every problem."""
    parsed = read_rules(file)
    click.echo(f"{file}: {len(parsed)} number(s) OK")
    for number, rule in sorted(parsed.items()):
        click.echo(f"  {number}: " + " -> ".join(t.target for t in rule.tiers))


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Also delete stored numbers that FILE does not list.")
def apply(file: Path, prune: bool) -> None:
    """Write FILE's rules to the table and print what changed."""
    changes = apply_file(file, prune=prune)
    for change in changes:
        version = f" (version {change.version})" if change.version is not None else ""
        note = " - not in the file, kept (--prune deletes it)" if change.action == "kept" else ""
        click.echo(f"{SYMBOL[change.action]} {change.number} {change.action}{version}{note}")
    counts = {action: sum(c.action == action for c in changes) for action in SYMBOL}
    click.echo(", ".join(f"{n} {action}" for action, n in counts.items() if n) or "no rules")


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
    Console(width=None if sys.stdout.isatty() else 200).print(table)
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
    click.echo(rules_to_yaml({number: item.rule}), nl=False)


@rules.command()
@click.argument("number", type=NUMBER)
def delete(number: str) -> None:
    """Delete NUMBER's rule (calls to it then hear a short message)."""
    from failover_did.store import rules_store

    if not with_store(lambda: rules_store.delete_rule(number)):
        raise click.ClickException(f"no rule for {number}")
    click.echo(f"- {number} deleted")
