"""The local stack's AWS emulation in a process of its own: moto's application served by waitress on
loopback, with DynamoDB made atomic per request. Its own process keeps moto's per-request CPU off the
webhook's interpreter lock.

    python -m failover_did_cli.aws_emulation PORT

It ends when the process that started it does (it never outlives its `failover-did local`)."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import sys
import threading
import time
from functools import cache, lru_cache
from typing import Any

from failover_did_cli.local_stack import AWS_HOST, serialise_dynamodb, settle_heap


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


class _NoTableCopies:
    """What moto's DynamoDB models see as `copy`: a table is "copied" as itself. TransactWriteItems keeps
    a deep copy of every table it names to put back if the transaction fails, a cost that grows with the
    table (the call log and the event log grow with every call); undo_by_item keeps the named items
    instead. Anything else (an item) is copied as moto copies it."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _key_of(table: Any, operation: dict[str, Any]) -> tuple[Any, Any] | None:
    """The (hash, range) key an operation of a transaction names, as moto keys its items; None when the
    operation names none moto would accept (it then refuses the transaction before writing that item)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    attributes = operation.get("Item") or operation.get("Key")
    if not isinstance(attributes, dict):
        return None
    try:
        hash_value = DynamoType(attributes[table.hash_key_attr])
        range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return hash_value, range_value


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    ranged = table.items.setdefault(hash_value, {})
    if item is None:
        ranged.pop(range_value, None)
        if not ranged:
            table.items.pop(hash_value, None)
    else:
        ranged[range_value] = item


def undo_by_item() -> None:
    """A failed TransactWriteItems puts back the items it names (copied before it ran), not whole-table
    copies. Safe because serialise_dynamodb runs one DynamoDB operation at a time, and because the
    emulation's tables have no streams (a table copy would also have put back the stream's records)."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend

    models.copy = _NoTableCopies()  # type: ignore[assignment,attr-defined]
    transact = DynamoDBBackend.transact_write_items

    def by_item(backend: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        kept = []
        for entry in transact_items if isinstance(transact_items, list) else []:
            for operation in entry.values() if isinstance(entry, dict) else []:
                table = backend.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
                key = _key_of(table, operation) if table is not None else None
                if table is not None and key is not None:
                    kept.append((table, *key, copy.deepcopy(table.get_item(*key))))
        try:
            return transact(backend, transact_items, *args, **kwargs)
        except BaseException:
            for table, hash_value, range_value, item in reversed(kept):
                _put_back(table, hash_value, range_value, item)
            raise

    DynamoDBBackend.transact_write_items = by_item  # type: ignore[method-assign,assignment]


def _copy_tree(value: Any, memo: Any = None) -> Any:
    """A deep copy of an expression tree through pickle: its nodes link to their parents, and copy.deepcopy
    walks such a graph several times slower."""
    try:
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    except Exception:  # something in it does not pickle: copied as moto copies it
        return copy.deepcopy(value, memo)


def parse_update_expressions_once() -> None:
    """moto parses an UpdateExpression twice per request and deep-copies the tree to validate it against the
    item. The webhook's writes use a few expression texts over and over: each text is parsed once (the
    tree is only ever read, or copied before use), and the copy goes through _copy_tree."""
    from moto.dynamodb.parsing import expressions, validators

    parser = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    make = parser.make.__func__  # type: ignore[attr-defined]

    @lru_cache(maxsize=256)
    def parsed(expression: str) -> Any:
        return make(parser, expression)

    parser.make = classmethod(lambda cls, expression: parsed(expression))  # type: ignore[assignment,method-assign]
    validators.deepcopy = _copy_tree  # type: ignore[attr-defined,assignment]


def count_clauses_at_the_root() -> None:
    """moto checks that an UpdateExpression has at most one SET, ADD and REMOVE clause at every node of its
    tree, each check walking the node's whole subtree (a third of an UpdateItem's time for the call log's
    expressions). The parser puts clauses only under the root, so the root's check alone says the same."""
    from moto.dynamodb.parsing.validators import ActionCountValidator

    def at_the_root(validator: Any, node: Any) -> Any:
        return validator.verify_action_counts(node)

    ActionCountValidator.traverse = at_the_root


def query_one_partition() -> None:
    """moto answers a Query on a table's key by sorting every item of the table, then keeping the key's: the
    events table (a number's events) grows with every failover, so each read of one number's recent events
    cost more as the stack ran. A key's Query here reads only that key's items (the same answer). Safe
    because serialise_dynamodb runs one DynamoDB operation at a time: the view lasts one query."""
    from moto.dynamodb.models.table import Table

    query = Table.query
    index_at = 6  # index_name's place among Table.query's arguments after hash_key

    def by_partition(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[index_at] if len(args) > index_at else kwargs.get("index_name")
        if index_name or hash_key is None:
            return query(table, hash_key, *args, **kwargs)  # an index's query: moto's way
        stored = table.items.get(hash_key)
        items = [] if stored is None else list(stored.values()) if table.range_key_attr else [stored]
        table.all_items = lambda: items
        try:
            return query(table, hash_key, *args, **kwargs)
        finally:
            del table.all_items

    Table.query = by_partition  # type: ignore[method-assign,assignment]


def cache_service_names() -> None:
    """moto lists its own package directory (a directory read and ~150 stat calls) on every request, under
    its dispatcher's lock, to tell a service's name from a host name: read it once."""
    from moto import backends

    names = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: names  # type: ignore[assignment]


def cache_method_names() -> None:
    """moto lists a response class's methods (inspect.getmembers) on every request to find the action's:
    list each class once."""
    from moto.core import responses, utils

    @cache
    def names(clazz: type) -> frozenset[str]:
        return frozenset(utils.method_names_from_class(clazz))

    responses.method_names_from_class = names  # type: ignore[attr-defined,assignment]


def serialise_results_directly() -> None:
    """moto writes each DynamoDB answer by walking the API's shape model, a large share of its time per
    request. An answer that already is the wire's JSON (only fields of the operation's output, only JSON
    types: no binary attribute, no timestamp) is written as it is; any other goes through moto's writer."""
    from moto.core.responses import ActionResult, BaseResponse
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    serialized = BaseResponse.serialized

    @cache
    def output_fields(action: str) -> frozenset[str]:
        output = get_service_model("dynamodb").operation_model(action).output_shape
        return frozenset(output.members) if output is not None else frozenset()

    def direct(handler: Any, result: Any) -> Any:
        if isinstance(handler, DynamoHandler) and type(result) in (ActionResult, DynamoResult):
            answer = result.result
            try:
                if isinstance(answer, dict) and answer.keys() <= output_fields(handler._get_action()):
                    body = json.dumps(answer)
                    return 200, {"Content-Type": "application/x-amz-json-1.0", **handler.response_headers}, body
            except (TypeError, ValueError, LookupError):  # not JSON as it is, or not an operation of the API
                pass
        return serialized(handler, result)

    BaseResponse.serialized = direct  # type: ignore[method-assign,assignment]


def accept_local_emails() -> None:
    """moto's Cognito takes an email as a username only with a dotted domain (ops@example.com); the local
    console's admin is admin@localhost. Any one-'@' address without spaces is taken."""
    from moto.cognitoidp import utils

    utils.FORMATS["email"] = r"[^@\s]+@[^@\s]+"


WARMED_SERVICES = ("dynamodb", "s3", "sns", "sqs", "ssm")
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
    settle_heap()


def s3_metadata_names_in_lower_case() -> None:
    """S3 sends an object's user metadata as `x-amz-meta-<name>` headers in lower case, and the SDKs take the
    name after the prefix as sent; waitress capitalises every response header's name (`X-Amz-Meta-Sha256`,
    read back as metadata `Sha256`). Those names go out in lower case again, as S3 sends them."""
    from waitress.task import Task

    build = Task.build_response_header
    prefix = b"X-Amz-Meta-"

    def lower_case_metadata(task: Any) -> bytes:
        lines = []
        for line in build(task).split(b"\r\n"):
            if line.startswith(prefix):
                name, colon, value = line.partition(b":")
                line = name.lower() + colon + value
            lines.append(line)
        return b"\r\n".join(lines)

    Task.build_response_header = lower_case_metadata  # type: ignore[method-assign,assignment]


WORKERS = 4  # DynamoDB runs one operation at a time anyway (serialise_dynamodb); the rest is I/O


def serve(port: int) -> None:
    """moto's WSGI application (what moto's own server runs) behind waitress. moto's server closes every
    connection after one request, so each DynamoDB request of the webhook cost a new connection on both
    sides and a new thread here; waitress keeps connections alive and answers from a fixed pool of workers."""
    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    os.environ.setdefault("MOTO_PORT", str(port))  # as moto's server does: the port in URLs moto writes
    logging.getLogger("waitress").setLevel(logging.ERROR)  # no start-up line, no queue-depth warnings
    waitress.serve(DomainDispatcherApplication(create_backend_app), host=AWS_HOST, port=port, threads=WORKERS)


def main(argv: list[str]) -> None:
    import moto.moto_server.werkzeug_app  # noqa: F401  moto's core, imported before _warm imports beside it

    (port,) = argv
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    threading.Thread(target=_warm, args=(WARMED_SERVICES,), name="warm", daemon=True).start()
    undo_by_item()
    serialise_dynamodb()  # after: its lock is taken outside the transaction's undo
    parse_update_expressions_once()
    count_clauses_at_the_root()
    query_one_partition()
    cache_service_names()
    cache_method_names()
    serialise_results_directly()
    accept_local_emails()
    s3_metadata_names_in_lower_case()
    serve(int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
