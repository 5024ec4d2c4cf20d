"""Per-call facts that one webhook leaves for a later one: a screened callee's acceptance."""

from __future__ import annotations

import time

from pynamodb.exceptions import PynamoDBException

from failover_did.observability import logger
from failover_did.store import breaker
from failover_did.store.tables import CallItem

KEEP_SECONDS = 24 * 3600


def record_screen_accept(parent_call_sid: str, tier: int) -> None:
    # Idempotent: a retried webhook writes the same item again.
    item = CallItem(parent_call_sid, f"screen#{tier}", expires_at=int(time.time()) + KEEP_SECONDS)
    breaker.dynamodb.call(item.save)


def screen_accepted(parent_call_sid: str, tier: int) -> bool:
    """Whether the callee of `tier` pressed 1; a storage failure counts as not accepted."""
    try:
        breaker.dynamodb.call(lambda: CallItem.get(parent_call_sid, f"screen#{tier}"))
    except CallItem.DoesNotExist:
        return False
    except PynamoDBException:
        logger.exception("screen acceptance lookup failed", extra={"call_sid": parent_call_sid})
        return False
    return True
