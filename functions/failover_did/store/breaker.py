"""One DynamoDB failure per container, not one per call: after a failed request the webhook stops asking
DynamoDB for a while (serving cached rules and health, skipping its writes), so a hanging or throttled
table costs one caller at most one timeout, not one per lookup."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from pynamodb.exceptions import DoesNotExist, PynamoDBException

T = TypeVar("T")
COOLDOWN_SECONDS = 20.0


class StoreSkipped(PynamoDBException):
    """Not sent: DynamoDB failed moments ago (the breaker is open)."""

    msg = "DynamoDB failed moments ago; not asked again yet"


class Breaker:
    def __init__(self, cooldown: float = COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._cooldown = cooldown
        self._clock = clock
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at < self._cooldown

    def call(self, operation: Callable[[], T]) -> T:
        """Run a DynamoDB operation unless DynamoDB failed within the cooldown; a failure opens the breaker,
        a success (after the cooldown, the next try) closes it."""
        if self.is_open:
            raise StoreSkipped()
        try:
            result = operation()
        except PynamoDBException as error:
            if not _is_answer(error):
                self._opened_at = self._clock()
            raise
        self._opened_at = None
        return result

    def reset(self) -> None:
        self._opened_at = None


def error_code(error: PynamoDBException) -> str | None:
    """DynamoDB's error code behind a PynamoDB error; None when there was no answer at all (a timeout,
    a refused connection), where PynamoDB's own `cause_response_code` raises instead."""
    response = getattr(getattr(error, "cause", None), "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _is_answer(error: PynamoDBException) -> bool:
    """No such item, a conditional-check refusal, a refused key: DynamoDB working as asked, not failing."""
    if isinstance(error, DoesNotExist):
        return True
    return error_code(error) in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ValidationException",
    )


dynamodb = Breaker()
