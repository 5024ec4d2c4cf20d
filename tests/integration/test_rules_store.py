"""Rules in DynamoDB (moto): apply reports changes, and applies and deletes are atomic against each other.

moto's conditional writes are atomic per request but not across threads, so the races here are interleaved
deterministically: one writer reads, another runs to the end, then the first one writes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from failover_did.rules.validate import RulesError, parse_rules_yaml
from failover_did.store import rules_store
from failover_did.store.rules_store import (
    RULES_CHANGED,
    ConcurrentEdit,
    apply_rules,
    delete_rule,
    delete_stored,
    get_stored,
    read_snapshot,
)
from failover_did.store.tables import RULES_SET_KEY, RuleItem, RulesSetItem


def rules_with_timeout(timeout: int, number: str = "+14155550100") -> dict[str, Any]:
    return parse_rules_yaml(f'numbers: {{"{number}": {{primary: {{target: "+14155550111", timeout: {timeout}}}}}}}')


def forwarding(number: str, to: str, known: frozenset[str] = frozenset()) -> dict[str, Any]:
    return parse_rules_yaml(f'numbers: {{"{number}": {{primary: {{target: "{to}"}}}}}}', known_numbers=known)


def head() -> RulesSetItem | None:
    try:
        return RulesSetItem.get(RULES_SET_KEY, consistent_read=True)
    except RulesSetItem.DoesNotExist:
        return None


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


def test_every_writing_apply_bumps_the_rules_set_which_is_never_listed_as_a_rule(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    apply_rules(rules_with_timeout(11))
    apply_rules(rules_with_timeout(11))  # nothing to write: no bump
    current = head()
    assert current is not None and current.version == 2 and current.lock_owner is None
    assert [s.rule.number for s in rules_store.all_rules()] == ["+14155550100"]
    assert read_snapshot().numbers == {"+14155550100"}
    assert rules_store.load_rule(RULES_SET_KEY) is None and get_stored(RULES_SET_KEY) is None
    assert delete_stored(RULES_SET_KEY) is None and head() is not None


def test_two_applies_that_together_make_a_loop_the_second_is_refused(aws: Any) -> None:
    """A -> B and B -> A applied at once: each judged alone has no loop; together they would."""
    a, b = "+14155550100", "+14155550200"
    first_read = read_snapshot()
    first = forwarding(a, b, first_read.numbers)  # judged: B is no stored number, no loop

    second_read = read_snapshot()
    apply_rules(forwarding(b, a, second_read.numbers), snapshot=second_read)  # runs to the end first

    with pytest.raises(ConcurrentEdit, match=RULES_CHANGED):
        apply_rules(first, snapshot=first_read)
    assert get_stored(a) is None
    stored = get_stored(b)
    assert stored is not None and stored.rule.primary.target == a
    # run again, it reads the rules as they are now: the loop is seen and refused
    with pytest.raises(RulesError, match="loop"):
        forwarding(a, b, read_snapshot().numbers)


def test_an_edit_made_between_read_and_write_is_refused_not_overwritten(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    stale = read_snapshot()
    apply_rules(rules_with_timeout(30))  # the other operator's edit lands first
    with pytest.raises(ConcurrentEdit, match=RULES_CHANGED):
        apply_rules(rules_with_timeout(20), snapshot=stale)
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 30 and stored.version == 2


def test_a_refused_apply_writes_none_of_its_numbers(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    stale = read_snapshot()
    apply_rules(rules_with_timeout(30))
    both = {**rules_with_timeout(20), **many(2, timeout=20)}
    with pytest.raises(ConcurrentEdit):
        apply_rules(both, snapshot=stale)
    assert get_stored("+14155550001") is None and get_stored("+14155550002") is None


def test_a_delete_between_an_applys_read_and_write_refuses_the_apply(aws: Any) -> None:
    apply_rules({**rules_with_timeout(10), **rules_with_timeout(10, "+14155550200")})
    stale = read_snapshot()
    assert delete_rule("+14155550200") is True
    with pytest.raises(ConcurrentEdit, match=RULES_CHANGED):
        apply_rules({**rules_with_timeout(20), **rules_with_timeout(20, "+14155550200")}, snapshot=stale)
    assert get_stored("+14155550200") is None  # the delete stands; the apply did not bring it back
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 10


def test_an_apply_between_a_deletes_read_and_write_refuses_the_delete(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_rules(rules_with_timeout(10))
    real_version_now = rules_store._version_now

    def version_then_someone_applies() -> int | None:
        read = real_version_now()
        monkeypatch.setattr(rules_store, "_version_now", real_version_now)
        apply_rules(rules_with_timeout(30))
        return read

    monkeypatch.setattr(rules_store, "_version_now", version_then_someone_applies)
    with pytest.raises(ConcurrentEdit, match=RULES_CHANGED):
        delete_stored("+14155550100")
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 30


def test_delete_reports_missing(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    assert delete_rule("+14155550100") is True
    assert delete_rule("+14155550100") is False


def test_a_rule_written_by_an_older_release_without_the_rules_set_is_still_guarded(aws: Any) -> None:
    RuleItem("+14155550100", rule=rules_with_timeout(10)["+14155550100"].to_doc()).save()  # no key, no head
    stale = read_snapshot()
    assert stale.version is None
    apply_rules(rules_with_timeout(10))  # gives the old rule its fallback key: a write, so a bump
    with pytest.raises(ConcurrentEdit):
        apply_rules(rules_with_timeout(20), snapshot=stale)
    stored = get_stored("+14155550100")
    assert stored is not None and stored.fallback_key and stored.rule.primary.timeout == 10


def test_a_retried_transaction_whose_first_try_landed_counts_as_applied(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when DynamoDB's answer is lost and botocore sends the same request again."""
    real_connection = rules_store._connection

    class SentTwice:
        def __init__(self) -> None:
            self._real = real_connection()

        def transact_write_items(self, **kwargs: Any) -> Any:
            self._real.transact_write_items(**kwargs)
            return self._real.transact_write_items(**kwargs)

    monkeypatch.setattr(rules_store, "_connection", SentTwice)
    changes = apply_rules(rules_with_timeout(10))
    assert [(c.action, c.version) for c in changes] == [("added", 1)]
    changes = apply_rules(rules_with_timeout(11))
    assert [(c.action, c.version) for c in changes] == [("changed", 2)]
    stored = get_stored("+14155550100")
    assert stored is not None and stored.version == 2 and stored.rule.primary.timeout == 11


# --- applies larger than one transaction: the lock ----------------------------------------------


def many(count: int, timeout: int = 10) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for i in range(count):
        rules.update(rules_with_timeout(timeout, f"+1415555{i + 1:04d}"))
    return rules


def test_an_apply_too_large_for_one_transaction_writes_everything_under_the_lock(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_store, "MAX_TRANSACTION_ITEMS", 3)  # two writes per transaction
    changes = apply_rules(many(5))
    assert [c.action for c in changes] == ["added"] * 5
    assert {get_stored(c.number).version for c in changes} == {1}  # type: ignore[union-attr]
    current = head()
    assert current is not None and current.version == 2  # taken (1), released (2)
    assert current.lock_owner is None and current.lock_expires is None
    pruned = apply_rules(many(1, timeout=20), prune=True)
    assert [c.action for c in pruned] == ["changed"] + ["deleted"] * 4
    assert read_snapshot().numbers == {"+14155550001"}


def test_a_large_apply_refuses_others_while_it_holds_the_lock(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_store, "MAX_TRANSACTION_ITEMS", 3)
    apply_rules(many(1))
    stale = read_snapshot()
    real_connection = rules_store._connection
    outcomes: list[str] = []

    def others_try_meanwhile() -> Any:
        if not outcomes:  # the lock is taken; its first transaction is about to go
            monkeypatch.setattr(rules_store, "_connection", real_connection)
            add_one = rules_with_timeout(40, "+14155559999")
            for attempt in (lambda: apply_rules(add_one), lambda: delete_rule("+14155550001")):
                try:
                    attempt()
                    outcomes.append("written")
                except ConcurrentEdit as error:
                    outcomes.append(str(error))
        return real_connection()

    monkeypatch.setattr(rules_store, "_connection", others_try_meanwhile)
    apply_rules(many(4, timeout=20), snapshot=stale)
    assert len(outcomes) == 2 and all("another apply is writing the rules" in o for o in outcomes), outcomes
    assert get_stored("+14155559999") is None
    assert read_snapshot().numbers == set(many(4))


def test_a_dead_appliers_lock_blocks_until_it_expires(aws: Any) -> None:
    apply_rules(rules_with_timeout(10))
    current = head()
    assert current is not None
    current.lock_owner, current.lock_expires = "dead-apply", int(time.time()) + 60
    current.save()
    with pytest.raises(ConcurrentEdit, match="another apply is writing the rules"):
        apply_rules(rules_with_timeout(20))
    current.lock_expires = int(time.time()) - 1
    current.save()
    assert [c.action for c in apply_rules(rules_with_timeout(20))] == ["changed"]
    released = head()
    assert released is not None and released.lock_owner is None


def test_a_locked_applys_transaction_whose_first_try_landed_counts_as_written(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules_store, "MAX_TRANSACTION_ITEMS", 3)
    real_connection = rules_store._connection

    class SentTwice:
        def __init__(self) -> None:
            self._real = real_connection()

        def transact_write_items(self, **kwargs: Any) -> Any:
            self._real.transact_write_items(**kwargs)
            return self._real.transact_write_items(**kwargs)

    monkeypatch.setattr(rules_store, "_connection", SentTwice)
    assert [c.version for c in apply_rules(many(5))] == [1] * 5
    assert [c.version for c in apply_rules(many(5, timeout=20))] == [2] * 5
    current = head()
    assert current is not None and current.lock_owner is None and current.version == 4
