"""The event log's events in plain words: `failover-did events`, the local stack's console log and the
operator console's Alerts page say the same."""

from __future__ import annotations


def describe(kind: str, detail: dict[str, object]) -> str:
    """One line of plain words for an event."""
    if kind == "failover":
        return (
            f"tier {detail.get('from_tier')} -> tier {detail.get('to_tier')} {detail.get('to_target')} "
            f"({detail.get('reason')}), call {detail.get('call_sid')}"
        )
    if kind in ("unreachable", "recovered"):
        word = "unreachable" if kind == "unreachable" else f"recovered ({detail.get('state')})"
        return f"{detail.get('tier_name')} {detail.get('target')} {word}, last check: {detail.get('reason')}"
    if kind == "rule-changed":
        version = f" (version {detail['version']})" if detail.get("version") is not None else ""
        by = f" by {detail['by']}" if detail.get("by") else ""
        diff = detail.get("diff")
        changes = "; ".join(str(line) for line in diff) if isinstance(diff, list) and diff else ""
        return f"rule {detail.get('action')}{by}{version}" + (f": {changes}" if changes else "")
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))


KINDS = ("failover", "unreachable", "recovered", "rule-changed")
