"""The local stack's webhook containers: processes that each run the Lambda handler, one invocation at a
time, as AWS runs many warm containers of one function.

A request takes an idle container, sends it the event over that container's own pipe and waits for the
answer: no broker thread stands between the HTTP server's thread and the container (a process pool's
queue adds two thread hand-offs per request, each a wait for the interpreter lock under load). A
container that dies is replaced by a fresh one; the request it was serving fails (the server answers
500, as API Gateway does when a function crashes)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from failover_did_cli.apigw import LambdaContext

READY = "ready"
FREE_CONTAINER_SECONDS = 30.0  # twice what Twilio waits for an answer: past this the request fails


class ContainerDied(Exception):
    """The container serving the request ended before answering (killed, or crashed)."""


class HandlerRaised(Exception):
    """The handler raised instead of answering (the container lives on)."""


def _cold_start(verbose: bool, timeout: str | None) -> None:
    """A webhook container's cold start: the Lambda's DynamoDB timeout, then the handler's imports."""
    from failover_did_cli.local_stack import TIMEOUT_ENV, quiet_lambda_logs, settle_heap

    if timeout is None:
        os.environ.pop(TIMEOUT_ENV, None)
    else:
        os.environ[TIMEOUT_ENV] = timeout
    if not verbose:
        quiet_lambda_logs()
    import failover_did.webhook.app  # noqa: F401

    settle_heap()


def is_console_path(path: str) -> bool:
    """The template's console routes, `/console` and `/console/{proxy+}`; the rest is the webhook's."""
    return path == "/console" or path.startswith("/console/")


def invoke_handler(event: dict[str, Any]) -> dict[str, Any]:
    """The answer of the function the route belongs to (the console's or the webhook's)."""
    if is_console_path(str(event["rawPath"])):
        from failover_did_console.app import handler as console

        return dict(console(event, LambdaContext()))  # type: ignore[arg-type]
    from failover_did.webhook.app import handler

    return dict(handler(event, LambdaContext()))


def _serve(connection: Connection, verbose: bool, timeout: str | None) -> None:
    """A container's life: cold start, say so, then answer one event at a time until the pipe closes."""
    _cold_start(verbose, timeout)

    connection.send(READY)
    while True:
        try:
            event = connection.recv()
        except (EOFError, OSError):  # the stack stopped
            return
        try:
            answer: tuple[str, Any] = ("answered", invoke_handler(event))
        except Exception as error:
            answer = ("raised", f"{type(error).__name__}: {error}")
        connection.send(answer)


@dataclass
class _Container:
    process: BaseProcess
    connection: Connection
    warm: bool = False


class _Turn:
    def __init__(self) -> None:
        self.given: _Container | None = None
        self.event = threading.Event()


class _InTurn:
    """Idle containers, taken by requests in the order they came: a freed container goes straight to the
    request that has waited longest. (A queue.Queue lets a request that just arrived take a freed container
    ahead of the one it wakes, so under load some requests waited ten times as long as most.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[_Container] = deque()
        self._waiting: deque[_Turn] = deque()

    def put(self, container: _Container) -> None:
        with self._lock:
            if not self._waiting:
                self._idle.append(container)
                return
            turn = self._waiting.popleft()
        turn.given = container
        turn.event.set()

    def get(self, timeout: float) -> _Container:
        """The next idle container in this request's turn; queue.Empty when none came within `timeout`."""
        with self._lock:
            if self._idle:  # nobody waits while a container is idle
                return self._idle.popleft()
            turn = _Turn()
            self._waiting.append(turn)
        if turn.event.wait(timeout) and turn.given is not None:
            return turn.given
        with self._lock:
            if turn in self._waiting:
                self._waiting.remove(turn)
                raise queue.Empty
        turn.event.wait()  # given just as the time ran out: it is on its way
        assert turn.given is not None
        return turn.given


class Containers:
    def __init__(self, count: int, verbose: bool, timeout: str | None) -> None:
        self.count, self.verbose, self.timeout = count, verbose, timeout
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter each, as a Lambda container
        self._idle = _InTurn()
        self._all: list[_Container] = []
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start every container; their cold starts run while the caller goes on (see wait_warm)."""
        for _ in range(self.count):
            self._spawn()

    def _spawn(self) -> _Container:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(theirs, self.verbose, self.timeout), name="webhook-container", daemon=True
        )
        process.start()
        theirs.close()
        container = _Container(process, ours)
        with self._lock:
            self._all.append(container)
        return container

    def wait_warm(self) -> None:
        """Until every container has had its cold start; then each is idle, waiting for an event."""
        for container in list(self._all):
            if container.warm:
                continue
            self._warm_up(container)
            self._idle.put(container)

    def _warm_up(self, container: _Container) -> None:
        try:
            said = container.connection.recv()
        except (EOFError, OSError) as error:
            exit_code = container.process.exitcode
            raise ContainerDied(f"a webhook container ended during its cold start (exit {exit_code})") from error
        if said != READY:
            raise ContainerDied(f"a webhook container said {said!r} instead of {READY!r}")
        container.warm = True

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's answer to `event` from the next idle container (waits for one)."""
        try:
            container = self._idle.get(timeout=FREE_CONTAINER_SECONDS)
        except queue.Empty:
            raise ContainerDied(f"no webhook container was free within {FREE_CONTAINER_SECONDS:g} s") from None
        try:
            container.connection.send(event)
            outcome, value = container.connection.recv()
        except (EOFError, OSError) as error:
            self._replace(container)
            exit_code = container.process.exitcode
            raise ContainerDied(f"the webhook container ended while serving the request (exit {exit_code})") from error
        self._idle.put(container)
        if outcome != "answered":
            raise HandlerRaised(str(value))
        return dict(value)

    def _replace(self, dead: _Container) -> None:
        """A fresh container in place of a dead one, warmed in the background (the next requests are served
        by the other containers meanwhile)."""
        dead.connection.close()
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            if self._stopped:
                return
        fresh = self._spawn()

        def warm() -> None:
            try:
                self._warm_up(fresh)
            except ContainerDied:
                return
            self._idle.put(fresh)

        threading.Thread(target=warm, name="webhook-container-start", daemon=True).start()

    def pids(self) -> list[int]:
        with self._lock:
            return [c.process.pid for c in self._all if c.process.pid is not None]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            containers = list(self._all)
        for container in containers:
            container.connection.close()
        for container in containers:
            container.process.join(timeout=2)
            if container.process.is_alive():
                container.process.kill()
