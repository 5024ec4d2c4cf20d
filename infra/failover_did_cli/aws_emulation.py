"""The local stack's AWS emulation in a process of its own: moto's server on loopback, with DynamoDB made
atomic per request. Its own process keeps moto's per-request CPU off the webhook's interpreter lock.

    python -m failover_did_cli.aws_emulation PORT

It ends when the process that started it does (it never outlives its `failover-did local`)."""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
import time
from typing import Any

from failover_did_cli.local_stack import AWS_HOST, serialise_dynamodb


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


class _BackupOncePerTransaction:
    """moto's TransactWriteItems backs up a table (a deep copy) once per *item* naming it, so loading 99
    rules into a table of N costs 99 copies of N items. The backup taken for the first item is the same
    state (nothing is written before all are copied): copy each table once per transaction."""

    def __init__(self) -> None:
        self._copies: dict[int, Any] | None = None

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if self._copies is None or not isinstance(value, Table):  # items are copied as moto does
            return copy.deepcopy(value, memo)
        if id(value) not in self._copies:
            self._copies[id(value)] = copy.deepcopy(value, memo)
        return self._copies[id(value)]

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def wrap(self, transact: Any) -> Any:
        def once(backend: Any, *args: Any, **kwargs: Any) -> Any:
            self._copies = {}
            try:
                return transact(backend, *args, **kwargs)
            finally:
                self._copies = None

        return once


def backup_tables_once() -> None:
    """Called before serialise_dynamodb, whose lock then holds around each transaction: one at a time,
    so one shared memo is safe."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend

    shim = _BackupOncePerTransaction()
    models.copy = shim  # type: ignore[assignment,attr-defined]
    DynamoDBBackend.transact_write_items = shim.wrap(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]


def accept_local_emails() -> None:
    """moto's Cognito takes an email as a username only with a dotted domain (ops@example.com); the local
    console's admin is admin@localhost. Any one-'@' address without spaces is taken."""
    from moto.cognitoidp import utils

    utils.FORMATS["email"] = r"[^@\s]+@[^@\s]+"


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    (port,) = argv
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request, no start-up banner
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    backup_tables_once()
    serialise_dynamodb()  # after: its lock is taken outside the per-transaction memo
    accept_local_emails()
    moto_main(["--host", AWS_HOST, "--port", port])


if __name__ == "__main__":
    main(sys.argv[1:])
