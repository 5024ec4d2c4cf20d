"""The console's fixtures: moto's DynamoDB (the template's tables) and Cognito (a pool, its app client, users
in the admin and viewer groups), moto's public JWKS served from a loopback HTTP server, and a browser-like
client that posts HTTP API v2 events into the real handler and keeps its cookies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto.utilities.utils import load_resource

from failover_did_cli.apigw import LambdaContext, http_event
from tests.integration.console.html import Element, parse

PASSWORD = "Correct-horse-7!"
TEMPORARY = "Temporary-pass-1!"
ADMIN = "admin@example.com"
VIEWER = "viewer@example.com"
NOBODY = "nobody@example.com"
NEWCOMER = "new@example.com"
HOST = "console.example.com"


@pytest.fixture(scope="session")
def jwks_url() -> Iterator[str]:
    """moto's public signing keys, served on loopback as Cognito serves a pool's."""
    keys = json.dumps(load_resource("cognitoidp/resources/jwks-public.json")).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(keys)))
            self.end_headers()
            self.wfile.write(keys)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Pool:
    id: str
    client_id: str
    cognito: Any


@pytest.fixture
def pool(aws: Any, jwks_url: str, monkeypatch: pytest.MonkeyPatch) -> Pool:
    from failover_did_console import auth
    from failover_did_console.settings import settings

    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = cognito.create_user_pool(PoolName="console", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="console",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    for group in ("admin", "viewer"):
        cognito.create_group(UserPoolId=pool_id, GroupName=group)
    for email, group in ((ADMIN, "admin"), (VIEWER, "viewer"), (NOBODY, None), (NEWCOMER, "admin")):
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            TemporaryPassword=TEMPORARY,
            UserAttributes=[{"Name": "email", "Value": email}],
            MessageAction="SUPPRESS",
        )
        if email != NEWCOMER:
            cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)
        if group:
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)
    monkeypatch.setenv("CONSOLE_USER_POOL_ID", pool_id)
    monkeypatch.setenv("CONSOLE_CLIENT_ID", client_id)
    monkeypatch.setenv("CONSOLE_JWKS_URL", jwks_url)
    settings.cache_clear()
    auth._jwks_client.cache_clear()
    return Pool(pool_id, client_id, cognito)


@dataclass
class Page:
    status: int
    body: str
    headers: dict[str, str]
    cookies: list[str]

    @property
    def html(self) -> Element:
        return parse(self.body)

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


class Browser:
    """Requests into failover_did_console.app.handler as API Gateway hands them over, with a cookie jar
    that keeps what the console sets (Max-Age=0 removes)."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def request(
        self, method: str, path: str, *, query: str = "", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Page:
        from failover_did_console.app import handler

        event = http_event(method, path, query=query, headers={"Host": HOST, **(headers or {})}, body=body)
        if self.jar:
            event["cookies"] = [f"{k}={v}" for k, v in self.jar.items()]
        response = handler(event, LambdaContext(function_name="failover-did-console"))
        for cookie in response.get("cookies", []):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return Page(
            response["statusCode"], response.get("body", ""), response.get("headers", {}), response.get("cookies", [])
        )

    def get(self, path: str, query: str = "") -> Page:
        path, _, inline = path.partition("?")
        return self.request("GET", path, query=query or inline)

    def post(self, path: str, fields: dict[str, str] | list[tuple[str, str]]) -> Page:
        return self.request(
            "POST",
            path,
            body=urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def csrf(self, path: str = "/console/numbers") -> str:
        value = self.get(path).html.input_value("csrf")
        assert value, f"no csrf field on {path}"
        return value

    def sign_in(self, email: str, password: str = PASSWORD) -> Page:
        token = self.get("/console/login").html.input_value("csrf") or ""
        return self.post("/console/login", {"csrf": token, "email": email, "password": password})


@pytest.fixture
def browser(pool: Pool) -> Browser:
    return Browser()


@pytest.fixture
def admin(pool: Pool, rules: Any) -> Browser:
    b = Browser()
    assert b.sign_in(ADMIN).status == 303
    return b


@pytest.fixture
def viewer(pool: Pool, rules: Any) -> Browser:
    b = Browser()
    assert b.sign_in(VIEWER).status == 303
    return b


@pytest.fixture(autouse=True)
def _fresh_connections() -> None:
    """The table models keep the connection they first made; a test run before these (an in-process command
    aimed at a local stack's endpoint) must not leave them pointing there."""
    from failover_did.store import failovers
    from failover_did.store.tables import CallItem, EventItem, FailoverCount, HealthShard, RuleItem, RulesSetItem

    for model in (RuleItem, RulesSetItem, CallItem, HealthShard, EventItem, FailoverCount):
        model._connection = None
    failovers._connection.cache_clear()


@pytest.fixture(autouse=True)
def _drills_stay_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill posts to a Voice URL; unless a test names its webhook, that is a loopback port where nothing
    listens (the discard port), never the API's domain on the internet."""
    from failover_did_console.settings import settings

    monkeypatch.delenv("CONSOLE_VOICE_URL_PARAM", raising=False)
    monkeypatch.setenv("CONSOLE_VOICE_URL", "http://127.0.0.1:9/voice")
    settings.cache_clear()


@pytest.fixture
def webhook_url(rules: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real voice webhook handler behind a loopback HTTP server (one request at a time, as moto wants);
    its signed URLs are this server's (PUBLIC_BASE_URL)."""
    from failover_did.settings import settings as service_settings
    from failover_did.webhook.app import handler

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, _, query = self.path.partition("?")
            event = http_event("POST", path, query=query, headers=dict(self.headers.items()), body=body)
            raw = handler(event, LambdaContext())
            data = str(raw.get("body") or "").encode()
            self.send_response(int(raw["statusCode"]))
            for name, value in (raw.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("PUBLIC_BASE_URL", base)
    service_settings.cache_clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{base}/voice"
    server.shutdown()
    server.server_close()
