"""Audit events of the operator's rule changes: who changed which number, when, and what (a compact diff
of the stored rule document, before -> after). Written in one batch per command, into the event log."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from failover_did.store.events import event_item
from failover_did.store.tables import EventItem

RULE_CHANGED = "rule-changed"
MAX_DIFF_LINES = 20  # a rule rewritten wholesale is summarised, never a page of JSON


@dataclass(frozen=True)
class RuleChange:
    number: str
    action: str  # "added" | "changed" | "deleted"
    before: Mapping[str, Any] | None  # the stored rule document before (None when added)
    after: Mapping[str, Any] | None  # after (None when deleted)
    version: int | None = None


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out)
        if not value:
            out[path] = []
    else:
        out[path] = value


def _text(value: Any) -> str:
    return "(none)" if value is None else value if isinstance(value, str) else json.dumps(value)


def doc_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """One line per field that differs, `path: old -> new`, in path order."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _flatten(before or {}, "", old)
    _flatten(after or {}, "", new)
    lines = [
        f"{path}: {_text(old.get(path))} -> {_text(new.get(path))}"
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... and {len(lines) - MAX_DIFF_LINES} more field(s)"]
    return lines


def change_detail(change: RuleChange, who: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"action": change.action, "by": who, "diff": doc_diff(change.before, change.after)}
    if change.version is not None:
        detail["version"] = change.version
    return detail


def record_rule_changes(changes: Iterable[RuleChange], who: str, at: datetime) -> int:
    """Write one audit event per changed number, batched; returns how many were written."""
    command = secrets.token_hex(6)  # the event id: one command's events share it, each number its own key
    items = [
        event_item(c.number, RULE_CHANGED, at, change_detail(c, who), f"rule#{command}")
        for c in changes
        if c.action in ("added", "changed", "deleted")
    ]
    if items:
        with EventItem.batch_write() as batch:
            for item in items:
                batch.save(item)
    return len(items)
