"""The local stack's AWS emulation in a process of its own: moto's server on loopback, with DynamoDB made
atomic per request. Its own process keeps moto's per-request CPU off the webhook's interpreter lock.

    python -m failover_did_cli.aws_emulation PORT

It ends when the process that started it does (it never outlives its `failover-did local`)."""

from __future__ import annotations

import base64
import copy
import json
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


FAST_JSON_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
"""DynamoDB reads whose answers are items: moto's generic serializer walks every attribute value against the
API's shapes, most of the emulation's CPU for a scan of a thousand rules. Their results are already in the
wire's shape (DynamoDB JSON), so they are written as JSON directly."""


def _json_default(value: object) -> str:
    if isinstance(value, bytes):  # B and BS values: base64 on the wire
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _without_none(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if value is not None}


def fast_dynamodb_reads() -> None:
    from moto.dynamodb.responses import DynamoResult

    generic = DynamoResult.execute_result
    if getattr(generic, "fast", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in FAST_JSON_OPERATIONS or not isinstance(self.result, dict):
            return generic(self, context)
        body = json.dumps(_without_none(self.result), default=_json_default, separators=(",", ":"))
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    execute_result.fast = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def cache_module_list() -> None:
    """moto finds each request's service by listing its own package directory (twice, under a global lock):
    the list never changes while it runs, so it is read once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


WARMED_SERVICES = ("dynamodb", "s3", "sns", "sqs", "ssm", "cognitoidp")
"""The services the local stack uses, in the order it first asks them."""


def _warm(services: tuple[str, ...]) -> None:
    """Import each service's moto modules and read its API model, as moto does on the service's first request,
    while the server already listens: the stack's own start-up work overlaps them. (moto creates a service's
    app under a lock all requests take, so an import there, such as SSM's of moto's EC2 models, which takes
    seconds, would otherwise hold up every request behind it.) Nothing here creates a backend."""
    import importlib

    from moto.core.utils import get_service_model

    for service in services:
        for part in ("models", "responses", "urls"):
            importlib.import_module(f"moto.{service}.{part}")
        get_service_model(service)


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    (port,) = argv
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request, no start-up banner
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    threading.Thread(target=_warm, args=(WARMED_SERVICES,), name="warm", daemon=True).start()
    cache_module_list()
    fast_dynamodb_reads()
    backup_tables_once()
    serialise_dynamodb()  # after: its lock is taken outside the per-transaction memo
    accept_local_emails()
    moto_main(["--host", AWS_HOST, "--port", port])


if __name__ == "__main__":
    main(sys.argv[1:])
