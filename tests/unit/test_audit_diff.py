"""The audit event's compact diff of two rule documents."""

from __future__ import annotations

from failover_did.store.audit import MAX_DIFF_LINES, doc_diff

BEFORE = {"primary": {"target": "sip:a@pbx.example.com", "timeout": 15}, "failover": [{"target": "+14155550111"}]}


def test_only_changed_fields_with_old_and_new() -> None:
    after = {"primary": {"target": "sip:a@pbx.example.com", "timeout": 20}, "failover": [{"target": "+14155550122"}]}
    assert doc_diff(BEFORE, after) == [
        "failover[0].target: +14155550111 -> +14155550122",
        "primary.timeout: 15 -> 20",
    ]


def test_added_and_deleted_tiers_and_rules() -> None:
    two = {**BEFORE, "failover": [{"target": "+14155550111"}, {"target": "+14155550122"}]}
    assert doc_diff(BEFORE, two) == ["failover[1].target: (none) -> +14155550122"]
    assert doc_diff(BEFORE, None) == [
        "failover[0].target: +14155550111 -> (none)",
        "primary.target: sip:a@pbx.example.com -> (none)",
        "primary.timeout: 15 -> (none)",
    ]


def test_a_wholesale_rewrite_is_summarised() -> None:
    big = {"failover": [{"target": f"+1415555{i:04d}"} for i in range(40)]}
    lines = doc_diff(None, big)
    assert len(lines) == MAX_DIFF_LINES + 1
    assert lines[-1] == f"... and {40 - MAX_DIFF_LINES} more field(s)"
