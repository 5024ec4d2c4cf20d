"""Rules in DynamoDB (moto): apply reports changes, and concurrent edits never overwrite each other."""

from __future__ import annotations

from typing import Any

import pytest

from failover_did.rules.validate import parse_rules_yaml
from failover_did.store import rules_store
from failover_did.store.rules_store import ConcurrentEdit, apply_rules, delete_rule, get_stored


def rules_with_timeout(timeout: int, number: str = "+14155550100") -> dict[str, Any]:
    return parse_rules_yaml(f'numbers: {{"{number}": {{primary: {{target: "+14155550111", timeout: {timeout}}}}}}}')


def test_apply_reports_added_changed_unchanged_kept_and_pruned(aws: Any) -> None:
    first = apply_rules({**rules_with_timeout(10), **rules_with_timeout(10, "+14155550200")})
    assert [(c.number, c.action, c.version) for c in first] == [
        ("+14155550100", "added", 1),
        ("+14155550200", "added", 1),
    ]
    second = apply_rules(rules_with_timeout(11))
    assert [(c.number, c.action, c.version) for c in second] == [
        ("+14155550100", "changed", 2),
        ("+14155550200", "kept", 1),
    ]
    assert [c.action for c in apply_rules(rules_with_timeout(11))] == ["unchanged", "kept"]
    pruned = apply_rules(rules_with_timeout(11), prune=True)
    assert [(c.number, c.action) for c in pruned] == [("+14155550100", "unchanged"), ("+14155550200", "deleted")]
    assert get_stored("+14155550200") is None
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 11 and stored.version == 2


def test_edit_made_between_read_and_write_is_refused_not_overwritten(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_rules(rules_with_timeout(10))
    real_save = rules_store._save
    interleaved = False

    def save_after_someone_else(item: Any) -> None:
        nonlocal interleaved
        if not interleaved:
            interleaved = True
            monkeypatch.setattr(rules_store, "_save", real_save)
            apply_rules(rules_with_timeout(30))  # the other operator's edit lands first
        real_save(item)

    monkeypatch.setattr(rules_store, "_save", save_after_someone_else)
    with pytest.raises(ConcurrentEdit, match=r"\+14155550100 was changed by someone else"):
        apply_rules(rules_with_timeout(20))
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 30 and stored.version == 2


def test_delete_reports_missing(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    assert delete_rule("+14155550100") is True
    assert delete_rule("+14155550100") is False
