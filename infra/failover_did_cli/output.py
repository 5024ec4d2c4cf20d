"""Printing tables: wide enough when piped, and cell text shown as written (no rich markup)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table


def print_table(table: Table, width: int = 200) -> None:
    Console(width=None if sys.stdout.isatty() else width, markup=False, highlight=False).print(table)
