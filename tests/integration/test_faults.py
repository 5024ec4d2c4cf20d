"""Faults injected under the real handler: DynamoDB unreachable, hanging past the time budget, or throttling,
during the incoming call and during Dial action callbacks, with and without a cached rule; the auth-token
parameter unreachable. Every caller still gets TwiML that dials the rule's tiers within 2 s, and nothing
written before the fault is lost."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from failover_did import fallback, twiml
from failover_did.rules.model import Rule
from failover_did.store import breaker, failovers, static_fallback
from failover_did.store.rules_store import get_stored
from failover_did.store.tables import CallItem, EventItem, FailoverCount, HealthShard, RuleItem, _Connection
from failover_did.webhook import app
from failover_did_cli.callsim import Reply, parse_reply
from failover_did_cli.fallback_publish import FallbackConfig, Publisher
from failover_did_cli.local_stack import free_port
from tests.support import Webhook, call_params

BUDGET_SECONDS = 2.0  # the bound for an answer under any storage fault
BUCKET = "fault-fallback"
MODELS = (RuleItem, CallItem, HealthShard, EventItem, FailoverCount)
CASCADE = ("sip:frontdesk@pbx.example.com", "+14155550111", "sip:oncall@dr.example.net")


class _BlackHole:
    """Accepts TCP connections and never answers: DynamoDB slower than any time budget."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


class _Throttling(BaseHTTPRequestHandler):
    """Answers every DynamoDB request the way DynamoDB answers when throttling."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "THROTTLED")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(params=["unreachable", "hanging", "throttled"])
def fault(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DynamoDB endpoint that fails in one way."""
    if request.param == "unreachable":
        yield f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    elif request.param == "hanging":
        hole = _BlackHole()
        yield hole.url
        hole.close()
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        server.server_close()


@pytest.fixture
def published(rules: dict[str, Rule], monkeypatch: pytest.MonkeyPatch) -> dict[str, Rule]:
    """The rules' static cascades published to S3 (moto), as `rules apply` does."""
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    publisher = Publisher(FallbackConfig(BUCKET, f"https://{BUCKET}.s3.amazonaws.com/fallback/"))
    for number, rule in rules.items():
        publisher.publish(rule, f"key{number[1:]}")
    monkeypatch.setenv("FALLBACK_BUCKET", BUCKET)
    static_fallback._s3.cache_clear()
    return rules


def dynamodb_fails(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """From now on every table is reached at `endpoint` (connections are rebuilt)."""
    for model in MODELS:
        monkeypatch.setattr(model.Meta, "host", endpoint, raising=False)
        monkeypatch.setattr(model, "_connection", None)
    failovers._connection.cache_clear()
    app.health.clear()
    monkeypatch.setattr(app.rules, "_ttl", 0.0)  # cached rules are stale: every lookup asks DynamoDB first


def post(webhook: Webhook, path: str, params: dict[str, str], query: str = "") -> Reply:
    result = webhook.post(path, params, query)
    return parse_reply(result.status, result.body)


def test_the_longest_wait_on_a_failing_table_fits_the_answer_budget() -> None:
    """How long a caller can wait on DynamoDB is fixed by configuration, not luck: every try is bounded by
    its connect and read timeouts, and the tries are counted. (Measured times: benchmarks, not tests.)"""
    per_try = _Connection.connect_timeout_seconds + _Connection.read_timeout_seconds
    assert per_try * (1 + _Connection.max_retry_attempts) <= BUDGET_SECONDS


@pytest.fixture(autouse=True)
def _fresh_breaker() -> Iterator[None]:
    breaker.dynamodb.reset()
    yield
    breaker.dynamodb.reset()
    failovers._connection.cache_clear()


def test_warm_container_serves_the_last_known_rule(
    published: dict[str, Rule], webhook: Webhook, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post(webhook, "/voice", call_params()).dial is not None  # the rule is now cached
    dynamodb_fails(monkeypatch, fault)
    incoming = post(webhook, "/voice", call_params())
    assert breaker.dynamodb.is_open, "after one failure the rest of the call does not wait on DynamoDB again"
    action = post(webhook, "/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    last = post(webhook, "/voice/action", call_params(DialCallStatus="no-answer"), "tier=1&hop=2")
    assert incoming.status == action.status == last.status == 200
    assert incoming.dial and incoming.dial.targets == CASCADE[:1]
    assert action.dial and action.dial.targets == CASCADE[1:2]
    assert last.dial and last.dial.targets == CASCADE[2:]


def test_cold_container_serves_the_static_cascade(
    published: dict[str, Rule], webhook: Webhook, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb_fails(monkeypatch, fault)
    incoming = post(webhook, "/voice", call_params())
    assert incoming.status == 200
    assert breaker.dynamodb.is_open
    dials = [d for d in incoming.body.split("<Dial")[1:]]
    assert len(dials) == 3 and all(target in incoming.body for target in CASCADE)
    assert incoming.body.index(CASCADE[0]) < incoming.body.index(CASCADE[1]) < incoming.body.index(CASCADE[2])
    # mid-call, a fresh container: only the tiers not tried yet
    app.rules.clear()
    breaker.dynamodb.reset()
    rest = post(webhook, "/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    assert rest.status == 200
    assert rest.dial and rest.dial.targets == CASCADE[1:2] and CASCADE[0] not in rest.body
    answered = post(webhook, "/voice/action", call_params(DialCallStatus="completed"), "tier=1&hop=2")
    assert answered.verbs == ("Hangup",)


def test_cold_container_without_any_fallback_apologises_not_errors(
    rules: dict[str, Rule], webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FALLBACK_BUCKET", raising=False)
    dynamodb_fails(monkeypatch, f"http://127.0.0.1:{free_port()}")
    reply = post(webhook, "/voice", call_params())
    assert reply.status == 200 and reply.dial is None and reply.say and reply.hangs_up
    assert breaker.dynamodb.is_open


def test_nothing_written_before_the_fault_is_lost(
    published: dict[str, Rule], webhook: Webhook, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {number: get_stored(number) for number in published}
    with monkeypatch.context() as during:
        dynamodb_fails(during, fault)
        for _ in range(3):
            webhook.post(
                "/voice/action", call_params(DialCallStatus="failed", DialSipResponseCode="503"), "tier=0&hop=1"
            )
    for model in MODELS:
        model._connection = None
    failovers._connection.cache_clear()
    breaker.dynamodb.reset()
    assert {number: get_stored(number) for number in published} == before


def test_auth_token_parameter_unreachable(
    rules: dict[str, Rule], webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In AWS the token comes from SSM. A warm container keeps verifying with the token it read; a cold one
    cannot verify anything and refuses (403), which sends Twilio to the number's static Voice Fallback URL."""
    from aws_lambda_powertools.utilities import parameters

    from tests.support import TOKEN

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/failover-did/twilio-auth-token", Value=TOKEN, Type="SecureString"
    )
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PARAM", "/failover-did/twilio-auth-token")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    monkeypatch.setattr(app, "tokens", type(app.tokens)())
    parameters.clear_caches()
    assert webhook.post("/voice", call_params()).status == 200  # read from SSM (moto) and cached
    parameters.clear_caches()  # the cache expired ...

    def ssm_down(*args: Any, **kwargs: Any) -> str:
        raise parameters.exceptions.GetParameterError("SSM unreachable")

    monkeypatch.setattr(parameters, "get_parameter", ssm_down)  # ... and SSM is down
    assert webhook.post("/voice", call_params()).status == 200  # the last good token still verifies
    assert webhook.post("/voice", call_params(), signature="forged").status == 403
    monkeypatch.setattr(app, "tokens", type(app.tokens)())  # a cold container
    refused = webhook.post("/voice", call_params())
    assert refused.status == 403 and "Dial" not in refused.body


# --- the store-down path never errors ------------------------------------------------------------------


def store_private(number: str, document: str) -> None:
    """Replace the number's stored static cascade (what `rules apply` publishes) with `document`."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=BUCKET, Key=fallback.private_key(number), Body=document.encode("utf-8", "surrogatepass"))


def apologises(reply: Reply) -> bool:
    return reply.status == 200 and reply.dial is None and reply.say == twiml.STORE_DOWN_SAY and reply.hangs_up


@pytest.mark.parametrize(
    "document",
    ["not xml at all", "<Response><Dial>", "<Html/>", "", "<Response><Say>&bogus;</Say></Response>"],
)
def test_cold_container_with_a_malformed_static_document_apologises(
    published: dict[str, Rule], webhook: Webhook, monkeypatch: pytest.MonkeyPatch, document: str
) -> None:
    store_private("+14155550100", document)
    dynamodb_fails(monkeypatch, f"http://127.0.0.1:{free_port()}")
    incoming = post(webhook, "/voice", call_params())
    assert apologises(incoming), incoming.body
    app.rules.clear()
    breaker.dynamodb.reset()
    mid_call = post(webhook, "/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    assert apologises(mid_call), mid_call.body


def test_a_stored_say_with_control_characters_is_served_as_valid_twiml(
    published: dict[str, Rule], webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A static document written before say texts were checked: `\\v` and ESC are not XML 1.0."""
    store_private(
        "+14155550100",
        "<Response><Dial><Number>+14155550111</Number></Dial><Say>Closed\v\x1b now</Say><Hangup/></Response>",
    )
    dynamodb_fails(monkeypatch, f"http://127.0.0.1:{free_port()}")
    incoming = post(webhook, "/voice", call_params())
    assert incoming.status == 200 and incoming.dial and incoming.dial.targets == ("+14155550111",)
    assert incoming.say == "Closed   now"
    app.rules.clear()
    breaker.dynamodb.reset()
    rest = post(webhook, "/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1")
    assert rest.status == 200 and rest.dial is None and rest.say == "Closed   now" and rest.hangs_up


def test_anything_failing_in_the_store_down_path_ends_in_the_apology(
    published: dict[str, Rule], webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb_fails(monkeypatch, f"http://127.0.0.1:{free_port()}")

    def broken(*args: Any) -> str:
        raise MemoryError("the static document cannot be read")

    monkeypatch.setattr(static_fallback, "static_cascade_of", broken)
    assert apologises(post(webhook, "/voice", call_params()))
    monkeypatch.setattr(static_fallback, "static_cascade_of", lambda number: "<Response><Dial/></Response>")
    monkeypatch.setattr(fallback, "after_tier", broken)
    app.rules.clear()
    breaker.dynamodb.reset()
    assert apologises(post(webhook, "/voice/action", call_params(DialCallStatus="busy"), "tier=0&hop=1"))


def test_a_cold_container_renders_a_stored_rule_with_a_control_character_say(
    rules: dict[str, Rule], webhook: Webhook
) -> None:
    """A rule stored before say texts were checked reaches the renderer unchanged: it still makes TwiML."""
    item = RuleItem.get("+14155550100")
    item.rule = {**item.rule, "final": {"say": "Closed\v\x1b now", "voicemail": False}}
    item.save()
    app.rules.clear()
    result = webhook.post("/voice/action", call_params(DialCallStatus="busy"), "tier=2&hop=3")
    reply = parse_reply(result.status, result.body)
    assert reply.say == "Closed   now" and reply.hangs_up
