"""Printing tables: wide enough when piped, and cell text shown as written (no rich markup); the filters and
paging that `rules list`, `status` and `events` share."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_LIMIT = 100
_PREFIX = re.compile(r"\+?\d{1,15}")


def print_table(table: Table, width: int = 200) -> None:
    Console(width=None if sys.stdout.isatty() else width, markup=False, highlight=False).print(table)


@dataclass(frozen=True)
class Page:
    """Which rows to show: `limit` rows (0: all) of page `number` (from 1)."""

    limit: int = DEFAULT_LIMIT
    number: int = 1

    def of(self, rows: Sequence[T]) -> Sequence[T]:
        if not self.limit:
            return rows
        start = (self.number - 1) * self.limit
        return rows[start : start + self.limit]

    def footer(self, total: int, noun: str) -> str:
        """`1000 number(s); showing 1-100 (page 1 of 10; --page 2 for the next)`, or just the count."""
        if not self.limit or (total <= self.limit and self.number == 1):
            return f"{total} {noun}"
        pages = max(1, -(-total // self.limit))
        start = (self.number - 1) * self.limit
        if start >= total:
            return f"{total} {noun}; page {self.number} is past the last (page {pages})"
        end = min(total, start + self.limit)
        more = f"; --page {self.number + 1} for the next" if self.number < pages else ""
        return f"{total} {noun}; showing {start + 1}-{end} (page {self.number} of {pages}{more})"


def paging(command: F) -> F:
    """--limit and --page, given to the command as one `page: Page`."""

    @functools.wraps(command)
    def inner(*args: Any, limit: int, page_number: int, **kwargs: Any) -> Any:
        return command(*args, page=Page(limit, page_number), **kwargs)

    with_page = click.option(
        "--page",
        "page_number",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Which page of --limit rows to show.",
    )(inner)
    with_limit = click.option(
        "--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True, help="Rows per page (0: all)."
    )(with_page)
    return with_limit  # type: ignore[return-value]


def _prefix(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not _PREFIX.fullmatch(text):
        raise click.BadParameter(f"{value!r}: a number prefix is digits, with or without the '+' (e.g. +1415)")
    return text if text.startswith("+") else f"+{text}"


number_filter = click.option(
    "--prefix",
    callback=_prefix,
    metavar="DIGITS",
    help="Only numbers starting so, e.g. +1415 (the '+' may be left out).",
)


def matches_prefix(number: str, prefix: str | None) -> bool:
    return prefix is None or number.startswith(prefix)
