"""The whole service on one machine: moto (served by waitress) as AWS, the real Lambda handler behind a small HTTP
server that turns each request into the event API Gateway would send.

The HTTP server is exposed to whatever `--host` lets reach it (a tunnel, the LAN), so it defends itself
as API Gateway would: a body's Content-Length is checked before anything is read (400 malformed, 411
missing on a POST, 413 over MAX_REQUEST_BYTES), a request's headers and its body each have a deadline
(a client that trickles bytes is dropped), and at most `max_connections` connections are served at
once (the next ones get 503 at once). The AWS emulation has no authentication: it listens on loopback
only, whatever `--host` says."""

from __future__ import annotations

import base64
import errno
import gc
import io
import json
import logging
import math
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from failover_did.settings import ALLOW_PRIVATE_TARGETS_ENV, DYNAMODB_TIMEOUT_ENV, settings
from failover_did_cli import schema
from failover_did_cli.apigw import http_event
from failover_did_cli.callsim import VOICE_URL_PARAMETER
from failover_did_cli.containers import Containers, invoke_handler, is_console_path
from failover_did_cli.env import (
    FALLBACK_BASE_URL_ENV,
    FALLBACK_PREFIX,
    LOCAL_ENV,
    LOCAL_FALLBACK_BUCKET,
    LOCAL_SERVER_NAME,
    NOTIFY_TOPIC_ARN_ENV,
    local_aws_environment,
    local_fallback_environment,
    local_notify_topic_arn,
)

if TYPE_CHECKING:
    from failover_did.store.events import Event

DEFAULT_PORT = 3000
DEFAULT_CONTAINERS = 4
TIMEOUT_ENV = DYNAMODB_TIMEOUT_ENV  # failover_did.store.tables reads it at import
OPERATOR_TIMEOUT_SECONDS = "10"
MAX_REQUEST_BYTES = 1024 * 1024
HEADER_SECONDS = 5.0  # to send the request line and headers (also how long an idle kept-alive connection lives)
BODY_SECONDS = 5.0  # to send the body once the headers are in
MAX_CONNECTIONS = 64  # served at once; the load benchmark runs 50 callers
EMULATION_START_SECONDS = 30.0
QUERY_EVENTS_UP_TO = 20  # numbers; past this the event log is watched with one scan a second
EVENT_HOLD_SECONDS = 2.0  # an event is printed this long after its time, in order with any written late
AWS_HOST = "127.0.0.1"  # the AWS emulation (no authentication) never listens anywhere else
Echo = Callable[[str], None]


_DYNAMODB_LOCK = threading.RLock()
_DYNAMODB_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "query", "scan", "transact_write_items")


def serialise_dynamodb() -> None:
    """Make the emulation's DynamoDB atomic per request, as DynamoDB is. moto's is not thread-safe: a
    transaction that fails restores a copy of each table it touched, undoing whatever another request wrote
    meanwhile, so of two applies racing, both could report success. Each operation runs under one lock."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _DYNAMODB_OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if getattr(operation, "serialised", False):
            continue

        def locked(self: Any, *args: Any, _operation: Any = operation, **kwargs: Any) -> Any:
            with _DYNAMODB_LOCK:
                return _operation(self, *args, **kwargs)

        locked.serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


def settle_heap() -> None:
    """After a process's start-up: what its imports and set-up made is kept out of the collector's later
    passes (gc.freeze), so a full collection under load walks only what was made since, not every module
    object again (a pause of up to ~200 ms, felt by every request in flight)."""
    gc.collect()
    gc.freeze()


class EmulationExited(Exception):
    """The emulation's process ended before it answered (its port was taken meanwhile, or it crashed)."""


def start_emulation(port: int, seconds: float = EMULATION_START_SECONDS) -> subprocess.Popen[bytes]:
    """The AWS emulation (moto) in its own process on loopback `port`, as `failover-did local` runs it; returns once it
    answers (the benchmarks and tests that need the emulation alone start it here too)."""
    command = [sys.executable, "-m", "failover_did_cli.aws_emulation", str(port)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulationExited(f"the AWS emulation exited {process.returncode} before it answered")
        try:
            socket.create_connection((AWS_HOST, port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the AWS emulation did not answer on {AWS_HOST}:{port} in {seconds:g} s")


class PortBusy(Exception):
    """A port the stack needs is taken: says which, by whom it is needed and the flag that moves it."""

    def __init__(self, flag: str, needed_by: str, host: str, port: int, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(
            f"port {port} on {host} ({needed_by}, {flag}) cannot be used: {reason}. "
            f"Choose another with {flag} PORT, or --port 0 to pick free ports for both"
        )


def quiet_lambda_logs() -> None:
    """Without -v the console shows one line per webhook and per event, none of the Lambda's JSON logs."""
    from failover_did.observability import logger

    logger.setLevel(logging.CRITICAL)  # the handler logs nothing as critical


def publish_voice_url(endpoint: str, voice_url: str) -> None:
    import boto3

    ssm = boto3.client("ssm", endpoint_url=endpoint)
    ssm.put_parameter(Name=VOICE_URL_PARAMETER, Value=voice_url, Type="String", Overwrite=True)


def masked(token: str) -> str:
    """A secret as the banner shows it: enough to tell which one, not enough to use."""
    shown = token[:4] if len(token) >= 16 else ""
    return f"{shown}... ({len(token)} characters)"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_rules_path() -> Path:
    return Path(str(resources.files("failover_did_cli") / "data" / "demo-rules.yaml"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    aws_port: int | None = None
    rules_path: Path | None = None
    public_url: str | None = None
    verbose: bool = False
    health_interval: float = 60.0
    echo: Echo = print
    max_connections: int = MAX_CONNECTIONS
    header_seconds: float = HEADER_SECONDS
    body_seconds: float = BODY_SECONDS
    token: str = ""
    token_generated: bool = False
    table_names: dict[str, str] = field(default_factory=dict)
    notice_sink: Any = None  # local_notices.Sink once started
    console_login: Any = None  # console_users.LocalLogin once started
    _moto: Any = None
    _http: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _serving: bool = False
    # Powertools keeps the current event and the pending metrics in module-level singletons, as one
    # Lambda container does: webhook invocations and checker writes take turns under this lock.
    invoke_lock: threading.Lock = field(default_factory=threading.Lock)
    console_lock: threading.Lock = field(default_factory=threading.Lock)
    containers: int = 0  # webhook containers (processes) invoked concurrently; 0: one, in this process
    _containers: Containers | None = None
    _webhook_timeout: str | None = None  # DYNAMODB_TIMEOUT_SECONDS as given to this command

    @property
    def aws_endpoint(self) -> str:
        return f"http://{AWS_HOST}:{self.aws_port}"

    @property
    def fallback_bucket(self) -> str:
        return LOCAL_FALLBACK_BUCKET

    @property
    def fallback_base_url(self) -> str:
        return local_fallback_environment(self.aws_endpoint, self.fallback_bucket)[FALLBACK_BASE_URL_ENV]

    @property
    def base_url(self) -> str:
        """Our URL prefix as callers reach it: --public-url, else the listen address over plain HTTP."""
        return self.public_url.rstrip("/") if self.public_url else f"http://{self.host}:{self.port}"

    @property
    def console_url(self) -> str:
        return f"{self.base_url}/console"

    @property
    def voice_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/voice" if self.public_url else f"http://{self.host}:{self.port}/voice"

    def start(self) -> None:
        """Bind the webhook's port, start the AWS emulation and create the tables. The webhook does not
        accept calls until `listen()`: the rules go in first, so no caller is told "unknown number" by a
        stack still loading. A port already taken raises PortBusy naming it."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the echo line per webhook is enough

        asked_port = self.port
        self._http = self._bind_webhook()
        if self.aws_port is None:
            self.aws_port = self.port + 1 if asked_port else 0
        self._start_emulation()
        self._webhook_timeout = os.environ.get(TIMEOUT_ENV)
        self._configure_environment()
        if not self.verbose:
            quiet_lambda_logs()
        import boto3

        client = boto3.client("dynamodb", endpoint_url=self.aws_endpoint)
        self.table_names = schema.create_tables(client)
        os.environ.update(schema.local_environment(self.table_names))
        self._create_fallback_bucket()
        from failover_did_cli import local_notices

        self.notice_sink = local_notices.create(self.aws_endpoint)
        publish_voice_url(self.aws_endpoint, self.voice_url)
        from failover_did_cli import console_users
        from failover_did_console.settings import VOICE_URL_ENV

        self.console_login = console_users.start_local_console(self.aws_endpoint)  # before the containers start
        os.environ[VOICE_URL_ENV] = self.voice_url  # the console's drill calls this stack's webhook

    def listen(self) -> None:
        """Start accepting calls (connections before this are refused, as by a stopped server), once the
        webhook containers have had their cold start."""
        assert self._http is not None
        if self._containers is not None:
            self._containers.wait_warm()
        settle_heap()
        self._http.server_activate()

    def start_containers(self) -> None:
        """Start the webhook's containers, as AWS runs many warm ones of one Lambda, each handling one
        invocation at a time; their cold starts run while the rules load."""
        if self.containers <= 0:
            return
        self._containers = Containers(self.containers, self.verbose, self._webhook_timeout)
        self._containers.start()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One invocation of the webhook's handler: in a free container, else in this process."""
        console = is_console_path(str(event["rawPath"]))
        if self._containers is None or (console and self.containers < 2):
            # The console's drill calls the webhook and waits for its answer: without a second container to
            # answer it, the console runs here, beside the webhook, under a lock of its own.
            with self.console_lock if console else self.invoke_lock:
                return invoke_handler(event)
        return self._containers.invoke(event)  # a container that dies is replaced for the next calls

    def _bind_webhook(self) -> _Server:
        server = _Server(
            (self.host, self.port), _handler_class(self), self.max_connections, self.echo, bind_and_activate=False
        )
        try:
            server.server_bind()
        except OSError as error:
            server.server_close()
            raise PortBusy("--port", "the voice webhook", self.host, self.port, error) from error
        self.port = int(server.server_address[1])
        return server

    def _start_emulation(self) -> None:
        """The AWS emulation in its own process on loopback; returns once it answers."""
        assert self.aws_port is not None
        with socket.socket() as probe:  # say which port is taken now, rather than after moto's traceback
            try:
                probe.bind((AWS_HOST, self.aws_port))
            except OSError as error:
                raise PortBusy("--aws-port", "the AWS emulation", AWS_HOST, self.aws_port, error) from error
            self.aws_port = int(probe.getsockname()[1])
        try:
            self._moto = start_emulation(self.aws_port)
        except EmulationExited as exited:
            taken = OSError(errno.EADDRINUSE, "taken while the emulation started")
            raise PortBusy("--aws-port", "the AWS emulation", AWS_HOST, self.aws_port, taken) from exited

    def _configure_environment(self) -> None:
        self.token = os.environ.get("TWILIO_AUTH_TOKEN", "")
        if not self.token:
            self.token, self.token_generated = secrets.token_hex(16), True
        os.environ.update(local_aws_environment(self.aws_endpoint))
        os.environ[LOCAL_ENV] = self.aws_endpoint
        os.environ.update(local_fallback_environment(self.aws_endpoint, self.fallback_bucket))
        os.environ["TWILIO_AUTH_TOKEN"] = self.token
        os.environ.pop("TWILIO_AUTH_TOKEN_PARAM", None)
        # The stack's own tests and demos run their SIP peers on loopback: let the checker probe them.
        os.environ[ALLOW_PRIVATE_TARGETS_ENV] = "true"
        # The webhook checks signatures over this base, never over the client's Host header.
        os.environ["PUBLIC_BASE_URL"] = self.base_url
        os.environ[NOTIFY_TOPIC_ARN_ENV] = local_notify_topic_arn()
        settings.cache_clear()
        # Loading the rules and the checker wait as an operator's command does; the webhook containers keep
        # the Lambda's short timeout (start_containers).
        os.environ.setdefault(TIMEOUT_ENV, OPERATOR_TIMEOUT_SECONDS)
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "failover-did")
        os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if self.verbose else "CRITICAL"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false" if self.verbose else "true"

    def _create_fallback_bucket(self) -> None:
        """The bucket `rules apply` publishes the static fallback TwiML to, readable over plain HTTP GET under
        `fallback/` as the template's bucket policy makes it in AWS."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.aws_endpoint)
        s3.create_bucket(Bucket=self.fallback_bucket)
        policy = fallback_bucket_policy(self.fallback_bucket)
        s3.put_bucket_policy(Bucket=self.fallback_bucket, Policy=json.dumps(policy))

    def serve_forever(self) -> None:
        assert self._http is not None
        self._serving = True
        self._http.serve_forever(poll_interval=0.2)

    def serve_in_background(self) -> threading.Thread:
        self._serving = True  # before the thread runs: stop() must shut it down
        thread = threading.Thread(target=self.serve_forever, name="local-http", daemon=True)
        thread.start()
        return thread

    def wait(self) -> None:
        """Until stopped (Ctrl-C or SIGTERM raise KeyboardInterrupt in the main thread)."""
        while not self._stopping.wait(0.5):
            pass

    def start_health_checks(self) -> threading.Thread:
        """Run the health checker now and then every `health_interval` seconds, against the same tables."""
        thread = threading.Thread(target=self._health_loop, name="local-health", daemon=True)
        thread.start()
        return thread

    def _health_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check_health_once()
            except Exception as error:  # keep checking; say what went wrong
                self.echo(f"{time.strftime('%H:%M:%S')} health check failed: {error}")
            self._stopping.wait(self.health_interval)

    def check_health_once(self) -> None:
        from failover_did.health import checker
        from failover_did.store import rules_store

        plan = checker.probe_plan(stored.rule for stored in rules_store.all_rules())
        results = checker.probe_targets(plan)  # outside the lock: probing takes up to a probe timeout
        with self.invoke_lock:
            report = checker.record_results(plan, results, datetime.now(UTC))
        for change in report.transitions:
            uses = ", ".join(f"{u.number} {u.tier_name}" for u in plan.get(change.target, []))
            self.echo(f"{time.strftime('%H:%M:%S')} health: {change.target} {change.kind} ({change.reason}) - {uses}")

    def start_event_log(self, interval: float = 1.0) -> threading.Thread:
        """Print each event (failover, unreachable, recovered) as it lands in the event log."""
        thread = threading.Thread(target=self._event_loop, args=(interval,), name="local-events", daemon=True)
        thread.start()
        return thread

    def _event_loop(self, interval: float) -> None:
        from failover_did.store import events, rules_store
        from failover_did_cli.events_cmd import describe

        printer = EventPrinter()
        numbers: list[str] = []
        refreshed = -math.inf
        while not self._stopping.wait(interval):
            now = datetime.now(UTC)
            try:
                if time.monotonic() - refreshed > 10:
                    numbers, refreshed = [s.rule.number for s in rules_store.all_rules()], time.monotonic()
                if len(numbers) <= QUERY_EVENTS_UP_TO:  # a query a number reads only their recent events
                    fresh = [e for n in numbers for e in events.events_of(n, printer.since())]
                else:  # one scan, whatever the number of numbers
                    fresh = list(events.all_events(printer.since()))
            except Exception as error:  # keep watching; say what went wrong
                self.echo(f"{time.strftime('%H:%M:%S')} event log unreadable: {error}")
                continue
            for event in printer.ready(fresh, now):
                self.echo(f"{event.at[11:19]} event: {event.number} {event.kind}: {describe(event.kind, event.detail)}")

    def start_notice_log(self, interval: float = 1.0) -> threading.Thread:
        """Print each missed-call notice as SNS delivers it; send due digests as the deployed flush does."""
        from failover_did_cli import local_notices

        args = (self.aws_endpoint, self.notice_sink, self.echo, self._stopping, self.invoke_lock, interval)
        thread = threading.Thread(target=local_notices.loop, args=args, name="local-notices", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            if self._serving:  # shutdown() waits for a serve_forever that never ran otherwise
                self._http.shutdown()
            self._http.server_close()
        if self._containers is not None:
            self._containers.stop()
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._moto.kill()


class EventPrinter:
    """Which events to print, in time order: an event is held back until EVENT_HOLD_SECONDS after its
    time, so one written a little late (a webhook stamps the time before its write lands) still comes out
    before any later one. Each is printed once."""

    def __init__(self) -> None:
        self._printed: set[tuple[str, str, str, str]] = set()
        self._mark = datetime.now(UTC)  # nothing older than the start is news

    def since(self) -> datetime:
        return self._mark - timedelta(seconds=EVENT_HOLD_SECONDS)

    def ready(self, events: Iterable[Event], now: datetime) -> list[Event]:
        from failover_did.store.events import iso

        ripe = iso(now - timedelta(seconds=EVENT_HOLD_SECONDS))
        out = []
        for event in sorted(events, key=lambda e: e.at):
            key = (event.number, event.at, event.kind, str(event.detail))
            if event.at > ripe or key in self._printed:
                continue
            self._printed.add(key)
            out.append(event)
        self._mark = max(self._mark, now - timedelta(seconds=EVENT_HOLD_SECONDS))
        oldest = iso(self.since())
        self._printed = {key for key in self._printed if key[1] >= oldest}
        return out


def fallback_bucket_policy(bucket: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template's FallbackBucketPolicy with the bucket's ARN filled in, minus its TLS-only denial (the
    local stack speaks plain HTTP). A template without that policy gets the one statement it would hold."""
    arn = f"arn:aws:s3:::{bucket}"

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::Sub" and isinstance(arg, str):
                return arg.replace("${FallbackBucket.Arn}", arn).replace("${FallbackBucket}", bucket)
            if key == "Fn::GetAtt" and arg == ["FallbackBucket", "Arn"]:
                return arn
            if key == "Ref" and arg == "FallbackBucket":
                return bucket
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    try:
        resources = (template or schema.load_template()).get("Resources", {})
    except (OSError, ValueError, yaml.YAMLError):
        resources = {}
    for resource in resources.values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::S3::BucketPolicy" and props.get("Bucket") == {"Ref": "FallbackBucket"}:
            document: dict[str, Any] = resolve(props.get("PolicyDocument") or {})
            document["Statement"] = [
                s for s in document.get("Statement", []) if "aws:SecureTransport" not in json.dumps(s.get("Condition"))
            ]
            return document
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/{FALLBACK_PREFIX}*"}
        ],
    }


class _DeadlineReader(io.RawIOBase):
    """A socket read with a deadline for the whole of a request part, not per recv: a client trickling one
    byte a second gets no more time than a silent one."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client took too long to send its request")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


_BUSY_BODY = b"too many connections at once; try again\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets connections under a burst of calls

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
        echo: Echo,
        bind_and_activate: bool = True,
    ) -> None:
        super().__init__(address, handler, bind_and_activate)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._echo = echo

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request: socket.socket) -> None:
        """Answer 503 without reading the request or waiting for the client (this runs on the accept loop)."""
        try:
            request.setblocking(False)
            request.send(BUSY)
            request.recv(65536)  # what already arrived, so closing does not reset the connection under it
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, never a traceback: a client that vanishes mid-request is not news at all."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        who = client_address[0] if isinstance(client_address, tuple) else client_address
        self._echo(f"{time.strftime('%H:%M:%S')} connection from {who} failed: {type(error).__name__}: {error}")


CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


def _handler_class(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = LOCAL_SERVER_NAME
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self._reader = _DeadlineReader(self.connection)
            self.rfile = io.BufferedReader(self._reader)

        def handle_one_request(self) -> None:
            self._reader.deadline = time.monotonic() + stack.header_seconds
            super().handle_one_request()

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, "text/plain", b"ok\n")
            else:
                self._invoke()

        def do_POST(self) -> None:
            self._invoke()

        def _body_length(self) -> int | None:
            """The body's length from Content-Length; None after answering a request that gets no further."""
            values = self.headers.get_all("Content-Length") or []
            if self.headers.get("Transfer-Encoding") or (not values and self.command == "POST"):
                self._refuse(411, "a POST needs a Content-Length (chunked bodies are not accepted)")
                return None
            if not values:
                return 0
            if len(set(values)) > 1:
                self._refuse(400, f"Content-Length given twice ({', '.join(map(repr, values))})")
                return None
            text = values[0].strip()
            if not CONTENT_LENGTH.fullmatch(text):
                self._refuse(400, f"Content-Length {text[:40]!r} is not a number of bytes")
                return None
            length = int(text)
            if length > MAX_REQUEST_BYTES:
                self._refuse(413, f"Content-Length {length} is over the {MAX_REQUEST_BYTES}-byte limit")
                return None
            return length

        def _refuse(self, status: int, reason: str) -> None:
            self._send(status, "text/plain", f"{reason}\n".encode(), close=True)
            stack.echo(f"{time.strftime('%H:%M:%S')} {self.command} {self.path[:200]} -> {status} {reason}")

        def _invoke(self) -> None:
            length = self._body_length()
            if length is None:
                return
            self._reader.deadline = time.monotonic() + stack.body_seconds
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client closed early
                self.close_connection = True
                return
            path, _, query = self.path.partition("?")
            headers = {k: v for k, v in self.headers.items()}
            event = http_event(
                self.command,
                path,
                query=query,
                headers=headers,
                body=body,
                source_ip=self.client_address[0],
                domain_name=urlsplit(stack.base_url).netloc,
            )
            started = time.perf_counter()
            try:
                result = stack.invoke(event)
            except Exception as error:  # as API Gateway answers a function that raised
                self._send(500, "application/json", b'{"message":"Internal Server Error"}', close=True)
                raised = f"{type(error).__name__}: {error}"
                stack.echo(f"{time.strftime('%H:%M:%S')} {self.command} {path} -> 500 the handler raised {raised}")
                return
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = int(result.get("statusCode", 200))
            text = str(result.get("body") or "")
            if is_console_path(path):  # pages and forms: headers and cookies pass through; no bodies echoed
                self._send_result(result)
                stack.echo(f"{time.strftime('%H:%M:%S')} {self.command} {path} -> {status} ({elapsed_ms:.1f} ms)")
                return
            content_type = (result.get("headers") or {}).get("Content-Type", "text/plain")
            self._send(status, content_type, text.encode())
            stack.echo(
                f"{time.strftime('%H:%M:%S')} {self.command} {self.path} -> {status} "
                f"{summarize(text) if status == 200 else text.strip()} ({elapsed_ms:.1f} ms)"
            )

        def _send(self, status: int, content_type: str, payload: bytes, close: bool = False) -> None:
            self.connection.settimeout(stack.body_seconds)  # the reader's deadline must not cut the answer short
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)

        def _send_result(self, result: dict[str, Any]) -> None:
            """A payload 2.0 response as API Gateway turns it into HTTP: its headers, one Set-Cookie per cookie."""
            body = str(result.get("body") or "")
            payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
            self.connection.settimeout(stack.body_seconds)
            self.send_response(int(result.get("statusCode", 200)))
            for name, value in (result.get("headers") or {}).items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, str(value))
            for cookie in result.get("cookies") or []:
                self.send_header("Set-Cookie", str(cookie))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # the echo line replaces it
            return

    return Handler


def summarize(document: str) -> str:
    """One line saying what a TwiML document makes Twilio do."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return document[:80]
    parts: list[str] = []
    for verb in root:
        if verb.tag == "Dial":
            targets = ", ".join((noun.text or "").strip() for noun in verb)
            parts.append(f"dial {targets} for {verb.get('timeout', '30')}s")
        elif verb.tag == "Say":
            parts.append(f"say {(verb.text or '')[:40]!r}")
        elif verb.tag == "Gather":
            parts.append("screen: press 1 to accept")
        else:
            parts.append(verb.tag.lower())
    return "; ".join(parts) or "(empty: continue)"
