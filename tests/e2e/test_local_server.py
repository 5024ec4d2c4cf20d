"""The local stack's HTTP server defends itself, over real sockets against the server class in-process
(with short deadlines and a small connection cap, so the tests are quick): a malformed, missing or huge
Content-Length is answered before any body is read, clients that trickle or stall are dropped, connections
past the cap get 503 at once, and none of it puts a traceback on the console."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from failover_did.settings import settings
from failover_did_cli import local_stack as ls
from failover_did_cli.env import local_client
from failover_did_cli.local_cmd import host_warning
from failover_did_cli.local_stack import MAX_REQUEST_BYTES, LocalStack, free_port, is_loopback, masked

pytestmark = pytest.mark.e2e

DEADLINE = 0.5  # the server's header and body deadlines in these tests
PATIENCE = 60  # steps of 0.1 s a test waits for the server to act: far past DEADLINE, never reached when right


@dataclass
class Served:
    port: int
    lines: list[str] = field(default_factory=list)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock

    def exchange(self, raw: bytes) -> str:
        with self.connect() as sock:
            sock.sendall(raw)
            return read_all(sock)


def read_all(sock: socket.socket) -> str:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


@pytest.fixture
def served() -> Iterator[Served]:
    result = Served(free_port())
    stack = LocalStack(
        port=result.port, echo=result.lines.append, max_connections=2, header_seconds=DEADLINE, body_seconds=DEADLINE
    )
    server = ls._Server(("127.0.0.1", result.port), ls._handler_class(stack), stack.max_connections, stack.echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield result
    server.shutdown()
    server.server_close()


def post_head(length: str | None, extra: str = "") -> bytes:
    header = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}{extra}\r\n".encode()


@pytest.mark.parametrize(
    ("length", "extra", "status", "says"),
    [
        ("-1", "", "400", "Content-Length '-1' is not a number of bytes"),
        ("abc", "", "400", "Content-Length 'abc' is not a number of bytes"),
        ("1e3", "", "400", "Content-Length '1e3' is not a number of bytes"),
        (str(200 * MAX_REQUEST_BYTES), "", "413", f"Content-Length {200 * MAX_REQUEST_BYTES} is over the"),
        (None, "", "411", "a POST needs a Content-Length"),
        (None, "Transfer-Encoding: chunked\r\n", "411", "chunked bodies are not accepted"),
        ("5", "Content-Length: 7\r\n", "400", "Content-Length given twice ('5', '7')"),
    ],
)
def test_a_bad_content_length_is_answered_before_any_body_is_read(
    served: Served, capsys: pytest.CaptureFixture[str], length: str | None, extra: str, status: str, says: str
) -> None:
    answer = served.exchange(post_head(length, extra))  # no body sent: the answer must not wait for one
    assert answer.startswith(f"HTTP/1.1 {status} "), answer
    assert says in answer and "Connection: close" in answer
    assert any(f"-> {status} " in line and says in line for line in served.lines), served.lines
    assert "Traceback" not in capsys.readouterr().err


def wait_closed(sock: socket.socket, trickle: bytes | None) -> tuple[bool, str]:
    """Send `trickle` a byte every 0.1 s (or nothing) until the server closes the connection; returns whether
    it did and what it answered."""
    sock.settimeout(0.1)
    received = b""
    for step in range(PATIENCE):
        if trickle is not None:
            try:
                sock.sendall(trickle[step % len(trickle) : step % len(trickle) + 1])
            except OSError:
                return True, received.decode("latin-1")
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received.decode("latin-1")
        if not chunk:
            return True, received.decode("latin-1")
        received += chunk
    return False, received.decode("latin-1")


def test_a_client_trickling_its_headers_is_dropped(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed, _ = wait_closed(sock, b"X-Slow: aaaaaaaaaaaaaaaa")
    assert closed, "a client sending a header byte every 0.1 s was never dropped"
    assert "Traceback" not in capsys.readouterr().err


def test_a_client_trickling_its_body_is_dropped(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    with served.connect() as sock:
        sock.sendall(post_head("1000"))
        closed, answer = wait_closed(sock, b"a")
    assert closed and answer == "", answer  # dropped, the handler never invoked
    assert "Traceback" not in capsys.readouterr().err


def test_a_silent_connection_is_dropped(served: Served) -> None:
    with served.connect() as sock:
        closed, answer = wait_closed(sock, None)
    assert closed and answer == ""


def test_connections_past_the_cap_get_503_and_the_cap_frees_up(served: Served) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(2):  # two kept-alive connections, each answered once: both hold a slot
            sock = served.connect()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 "), "a connection within the cap was not served"
            held.append(sock)
        with served.connect() as sock:  # answered at once, before it sends anything
            busy = read_all(sock)
        assert busy.startswith("HTTP/1.1 503 ") and "too many connections at once" in busy, busy
        for sock in held:  # the idle ones are dropped after the deadline, which frees their slots
            assert wait_closed(sock, None)[0]
    finally:
        for sock in held:
            sock.close()
    for _ in range(PATIENCE):  # the server thread releases a slot just after the close we saw
        answer = served.exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        if not answer.startswith("HTTP/1.1 503 "):
            break
        time.sleep(0.1)
    assert answer.startswith("HTTP/1.1 200 "), answer


def test_garbage_gets_an_answer_and_no_traceback(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    tls_hello = served.exchange(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    assert "400 - Bad request syntax" in tls_hello  # no HTTP version in it, so an answer without headers
    assert served.exchange(b"BREW /voice HTTP/1.1\r\n\r\n").startswith("HTTP/1.1 501 ")
    too_many = b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"
    assert served.exchange(too_many).startswith("HTTP/1.1 431 ")
    with served.connect() as sock:  # a client that vanishes mid-request
        sock.sendall(post_head("100") + b"half")
    assert "Traceback" not in capsys.readouterr().err


# --- the stack's configuration --------------------------------------------------------------------


def test_a_supplied_token_is_masked_and_a_short_one_shows_nothing() -> None:
    token = "0123456789abcdef0123456789abcdef"
    assert masked(token) == "0123... (32 characters)" and token not in masked(token)
    assert masked("secret-12") == "... (9 characters)"


def test_only_a_non_loopback_host_is_warned_about() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host) and host_warning(host) is None, host
    for host in ("0.0.0.0", "192.168.1.10", "::", "my-laptop.local"):
        warning = host_warning(host)
        assert warning is not None and f"--host {host}" in warning and "127.0.0.1 only" in warning


def test_the_stack_lets_its_checker_probe_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "ALLOW_PRIVATE_TARGETS"})
    settings.cache_clear()
    try:
        assert settings().allow_private_targets is False
        LocalStack(aws_port=1)._configure_environment()
        assert os.environ["ALLOW_PRIVATE_TARGETS"] == "true" and settings().allow_private_targets is True
    finally:
        monkeypatch.undo()
        settings.cache_clear()


def test_events_are_printed_in_time_order_each_once_even_when_written_late() -> None:
    from datetime import UTC, datetime, timedelta

    from failover_did.store.events import Event, iso

    printer = ls.EventPrinter()
    start = datetime.now(UTC)

    def at(seconds: float) -> Event:
        return Event("+14155550100", iso(start + timedelta(seconds=seconds)), "failover", {"call": str(seconds)})

    hold = timedelta(seconds=ls.EVENT_HOLD_SECONDS)
    first = printer.ready([at(1.0)], start + timedelta(seconds=1.5))
    assert first == []  # too fresh: a write stamped earlier may still be on its way
    second = printer.ready([at(1.0), at(3.0), at(0.5)], start + timedelta(seconds=1.0) + hold)
    assert [e.detail["call"] for e in second] == ["0.5", "1.0"]
    third = printer.ready([at(0.5), at(1.0), at(3.0), at(2.0)], start + timedelta(seconds=4.0) + hold)
    assert [e.detail["call"] for e in third] == ["2.0", "3.0"]
    assert printer.since() <= start + timedelta(seconds=4.0)  # the next read still covers late writers


@pytest.fixture
def emulation() -> Iterator[Any]:
    """The AWS emulation in its own process, as `failover-did local` runs it, and a DynamoDB client to it."""

    from failover_did_cli.local_stack import start_emulation

    port = free_port()
    process = start_emulation(port)
    try:
        yield local_client("dynamodb", f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_emulation_process_rolls_a_failed_transaction_back_and_applies_a_good_one(emulation: Any) -> None:
    """A transaction whose condition fails leaves every item as it was; one that passes writes all of its
    items."""
    db = emulation
    db.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": "1"}})

    def put(key: str, value: str) -> dict[str, object]:
        return {"Put": {"TableName": "t", "Item": {"k": {"S": key}, "v": {"N": value}}}}

    refused = {"ConditionCheck": {"TableName": "t", "Key": {"k": {"S": "a"}}, "ConditionExpression": "v = :two",
                                  "ExpressionAttributeValues": {":two": {"N": "2"}}}}  # fmt: skip
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(TransactItems=[put(f"n{i}", "7") for i in range(50)] + [refused])
    assert db.scan(TableName="t")["Count"] == 1
    db.transact_write_items(TransactItems=[put(f"n{i}", "7") for i in range(50)])
    assert db.scan(TableName="t")["Count"] == 51


def test_a_failed_transaction_puts_back_each_item_it_changed_and_leaves_the_rest(emulation: Any) -> None:
    """The emulation undoes a failed transaction item by item (not from a copy of each table): an item it
    updated gets its old attributes back, one it deleted returns, one it created is gone, in a table with a
    sort key as in one without, and the items it did not name are as they were."""
    db = emulation
    for name, keys in (("calls", ["sid"]), ("events", ["number", "sk"])):
        db.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ["HASH", "RANGE"], strict=False)],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    for i in range(20):
        db.put_item(TableName="events", Item={"number": {"S": "+1"}, "sk": {"S": f"e{i:02}"}, "n": {"N": str(i)}})
    db.put_item(TableName="calls", Item={"sid": {"S": "CA1"}, "tiers": {"M": {"1": {"S": "busy"}}}})
    db.put_item(TableName="calls", Item={"sid": {"S": "CA2"}, "blob": {"B": b"\x00\xff"}})
    before = {name: db.scan(TableName=name, ConsistentRead=True)["Items"] for name in ("calls", "events")}

    refused = {"ConditionCheck": {"TableName": "calls", "Key": {"sid": {"S": "CA2"}},
                                  "ConditionExpression": "attribute_not_exists(sid)"}}  # fmt: skip
    changes = [
        {"Update": {"TableName": "calls", "Key": {"sid": {"S": "CA1"}}, "UpdateExpression": "SET tiers.#h = :t",
                    "ExpressionAttributeNames": {"#h": "2"}, "ExpressionAttributeValues": {":t": {"S": "failed"}}}},
        {"Delete": {"TableName": "events", "Key": {"number": {"S": "+1"}, "sk": {"S": "e05"}}}},
        {"Put": {"TableName": "events", "Item": {"number": {"S": "+1"}, "sk": {"S": "e99"}}}},
        {"Put": {"TableName": "events", "Item": {"number": {"S": "+2"}, "sk": {"S": "e00"}}}},
        {"Update": {"TableName": "events", "Key": {"number": {"S": "+1"}, "sk": {"S": "e07"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ]  # fmt: skip
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(TransactItems=[*changes, refused])
    after = {name: db.scan(TableName=name, ConsistentRead=True)["Items"] for name in ("calls", "events")}
    assert after == before
    stored = db.get_item(TableName="calls", Key={"sid": {"S": "CA2"}}, ConsistentRead=True)["Item"]
    assert stored["blob"] == {"B": b"\x00\xff"}  # a binary attribute survives the emulation's direct answers

    db.transact_write_items(TransactItems=changes)
    events = db.scan(TableName="events", ConsistentRead=True)["Items"]
    assert len(events) == 20 - 1 + 2
    tiers = db.get_item(TableName="calls", Key={"sid": {"S": "CA1"}}, ConsistentRead=True)["Item"]["tiers"]
    assert tiers == {"M": {"1": {"S": "busy"}, "2": {"S": "failed"}}}
