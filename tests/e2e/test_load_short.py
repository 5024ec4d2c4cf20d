"""A short load on `failover-did local` (benchmarks/load_local.py in small): concurrent calls walking their
cascades while two editors race to change another number's rule. Every reply must be right for its rule,
and no applied edit may be lost.

The last three tests pin what the full load run once found, each reproduced deterministically and since fixed:
a listen backlog of 5 that reset connections, and `rules apply` when DynamoDB answers a write late (a false
"changed by someone else", and a traceback when every attempt times out)."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from benchmarks import load_local
from benchmarks.load_local import LoadReport

from failover_did.store.tables import RuleItem
from failover_did_cli.local_stack import free_port
from tests.e2e.conftest import CLI, RunningStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Path]]:
    workdir = tmp_path_factory.mktemp("load")
    with load_local.local_stack(workdir) as stack:
        yield stack, workdir


def assert_every_call_right_and_no_edit_lost(report: LoadReport, calls: int) -> None:
    assert len(report.calls) == calls
    assert report.application_errors == [], "\n".join(report.application_errors[:10])
    for call in report.calls:
        if not call.transport_error:
            assert call.dialed == call.expected, call
            assert call.requests == len(call.legs) + 1, call
    assert report.unlogged == [], "\n".join(report.unlogged[:10])  # every dial of every call is in the log
    edits = report.edits
    # An edit may be refused (ConcurrentEdit) or, on a loaded machine, not applied because the table did not
    # answer within the store's 1 s timeout; none may crash, and none may be lost.
    assert edits.applied >= 1 and edits.crashed == 0, edits.failures
    assert edits.versions_distinct, "two applied edits claim one version: one overwrote the other"
    assert edits.nothing_lost, report.summary()
    assert edits.last is not None


@pytest.mark.timeout(300)
def test_100_calls_20_at_a_time_with_racing_rule_edits(load_stack: tuple[RunningStack, Path]) -> None:
    stack, workdir = load_stack
    report = load_local.run_load(stack, workdir / "run-20", calls=100, concurrency=20, editors=2, seed=7)
    print(report.summary())
    assert_every_call_right_and_no_edit_lost(report, 100)
    assert report.errors == [], "\n".join(report.errors[:10])


@pytest.mark.timeout(300)
def test_calls_within_the_listen_backlog_all_get_answers(load_stack: tuple[RunningStack, Path]) -> None:
    """Five at a time: not a single error of any kind is tolerated."""
    stack, workdir = load_stack
    report = load_local.run_load(stack, workdir / "run-5", calls=50, concurrency=5, editors=2, seed=11)
    print(report.summary())
    assert report.errors == [], "\n".join(report.errors[:10])
    assert_every_call_right_and_no_edit_lost(report, 50)


BURST = 32
WRITES = (".PutItem", ".TransactWriteItems")
CLI_TIMEOUT = 0.5  # the operator's commands wait 10 s by default; short here so the proxy's delay times out


def test_a_burst_of_connections_waits_to_be_accepted(load_stack: tuple[RunningStack, Path]) -> None:
    """While the server process is busy (stopped, deterministically), a burst of connections is queued by the
    kernel up to the listen backlog; with a backlog as small as 5, most of the burst is dropped."""
    stack, _ = load_stack
    sockets: list[socket.socket] = []
    connected: set[socket.socket] = set()
    failed: set[socket.socket] = set()
    os.kill(stack.process.pid, signal.SIGSTOP)
    try:
        for _ in range(BURST):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", stack.port))
            sockets.append(sock)
        deadline = time.monotonic() + 0.5  # a dropped SYN is retried only after 1 s
        while len(connected) + len(failed) < BURST and (left := deadline - time.monotonic()) > 0:
            waiting = [s for s in sockets if s not in connected and s not in failed]
            _, writable, _ = select.select([], waiting, [], left)
            for sock in writable:
                ok = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                (connected if ok else failed).add(sock)
    finally:
        os.kill(stack.process.pid, signal.SIGCONT)
        for sock in sockets:
            sock.close()
    assert len(connected) == BURST, f"{len(connected)} of {BURST} connections completed while the server was busy"


def slow_writes_proxy(upstream_port: int, delay: float, hold: int) -> tuple[ThreadingHTTPServer, list[int]]:
    """A proxy in front of the AWS emulation that holds back the answers to the first `hold` DynamoDB write
    (PutItem, TransactWriteItems) requests (after the emulation has done each write) for `delay` seconds, as a
    loaded network or DynamoDB can; everything else passes straight through. Returns the running proxy and
    the statuses it held back."""
    held: list[int] = []

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body or None, headers)
            response = upstream.getresponse()
            payload = response.read()
            if self.headers.get("X-Amz-Target", "").endswith(WRITES) and len(held) < hold:
                held.append(response.status)
                time.sleep(delay)
            try:
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            except OSError:  # the client gave up waiting
                pass

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    proxy = ThreadingHTTPServer(("127.0.0.1", free_port()), Proxy)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy, held


def test_an_edit_whose_write_answer_is_late_is_not_reported_as_a_concurrent_edit(
    load_stack: tuple[RunningStack, Path],
) -> None:
    """Found by the load run: a version written by an edit that was reported refused."""
    stack, workdir = load_stack
    proxy, held = slow_writes_proxy(stack.aws_port, CLI_TIMEOUT + 0.5, hold=1)
    edit = workdir / "late-answer.yaml"
    edit.write_text('numbers:\n  "+14155550500":\n    primary: {target: "+14155550555", timeout: 33}\n')
    try:
        env = {
            **stack.env,
            "FAILOVER_DID_LOCAL": f"http://127.0.0.1:{proxy.server_address[1]}",
            "DYNAMODB_TIMEOUT_SECONDS": str(CLI_TIMEOUT),
        }
        done = subprocess.run([CLI, "rules", "apply", str(edit)], env=env, capture_output=True, text=True, timeout=60)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert held == [200], "the first write was not held back"
    shown = stack.cli("rules", "show", "+14155550500")
    assert shown.returncode == 0 and "timeout: 33" in shown.stdout, "the write did land"
    assert done.returncode == 0 and "+14155550500 added" in done.stdout, done.stderr


def test_an_edit_whose_write_answers_all_time_out_is_reported_without_a_traceback(
    load_stack: tuple[RunningStack, Path],
) -> None:
    """Found by the load run: an editor crashed with AttributeError: 'NoneType' object has no attribute 'get'.
    An apply writes in one transaction with a request token now, so a write that landed is known as such."""
    stack, workdir = load_stack
    attempts = 1 + int(RuleItem.Meta.max_retry_attempts)
    proxy, held = slow_writes_proxy(stack.aws_port, CLI_TIMEOUT + 0.5, hold=attempts)
    edit = workdir / "timed-out.yaml"
    edit.write_text('numbers:\n  "+14155550600":\n    primary: {target: "+14155550666", timeout: 44}\n')
    try:
        env = {
            **stack.env,
            "FAILOVER_DID_LOCAL": f"http://127.0.0.1:{proxy.server_address[1]}",
            "DYNAMODB_TIMEOUT_SECONDS": str(CLI_TIMEOUT),
        }
        done = subprocess.run([CLI, "rules", "apply", str(edit)], env=env, capture_output=True, text=True, timeout=60)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(held) == attempts, "not every write attempt was held back"
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    # Every answer was late, but the first try had landed: the apply reads the rules set back and says so
    # (had that read failed too, the error would be the one line "the rules table cannot be reached").
    assert done.returncode == 0 and "+ +14155550600 added" in done.stdout, done.stderr[-800:]
