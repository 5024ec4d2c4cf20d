"""`failover-did local`'s console keeps missed-call recipients and the static fallback in line on a save, as
`rules apply` does: over HTTP (no browser), an admin adds an email recipient and the stack's notify topic in
moto gets the subscription filtered on the number; the fallback is republished (no warning on the page);
removing the recipient unsubscribes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from failover_did_cli.env import local_client, local_notify_topic_arn
from tests.e2e.conftest import RunningStack, start_local, stop_local
from tests.integration.console.html import parse
from tests.integration.console.test_console_edit import form_fields

PASSWORD = "Local-notify-Passw0rd!"
NUMBER = "+14155550100"
PATH = "/console/numbers/%2B14155550100"
OPS = "ops@example.com"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


class Client:
    """Requests to the stack's console keeping its cookies by hand (they are Secure; this is plain HTTP on
    loopback, where a browser keeps them too)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar: dict[str, str] = {}
        self.opener = urllib.request.build_opener(NoRedirect)

    def request(self, path: str, fields: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urlencode(fields).encode() if fields is not None else None
        request = urllib.request.Request(self.base + path, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.jar:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.jar.items()))
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = rest.split(";", 1)[0]
        return response.status, response.headers.get("Location") or "", response.read().decode()

    def save(self, **changes: str) -> str:
        status, _, body = self.request(f"{PATH}/edit")
        assert status == 200, body
        fields = {**form_fields(parse(body)), **changes, "action": "save"}
        status, location, body = self.request(f"{PATH}/edit", fields)
        assert status == 303 and location.startswith(f"{PATH}?saved=1"), (status, location, body)
        status, _, body = self.request(location)
        assert status == 200
        return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_local(
        tmp_path_factory.mktemp("console-notify"),
        extra_env={"HEALTH_DOWN_AFTER": "1000", "FAILOVER_DID_CONSOLE_PASSWORD": PASSWORD},
    )
    yield running
    stop_local(running)


def subscriptions(stack: RunningStack) -> dict[tuple[str, str], Any]:
    sns = local_client("sns", f"http://127.0.0.1:{stack.aws_port}")
    found = {}
    for sub in sns.list_subscriptions_by_topic(TopicArn=local_notify_topic_arn())["Subscriptions"]:
        if sub["Protocol"] not in ("email", "sms"):
            continue  # the stack's own notice sink
        attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
        found[(sub["Protocol"], sub["Endpoint"])] = json.loads(attributes.get("FilterPolicy") or "null")
    return found


def test_a_console_save_subscribes_and_unsubscribes_on_the_local_topic(stack: RunningStack) -> None:
    client = Client(stack.port)
    status, _, body = client.request("/console/login")
    token = parse(body).input_value("csrf")
    assert status == 200 and token
    status, location, _ = client.request(
        "/console/login", {"csrf": token, "email": "admin@localhost", "password": PASSWORD}
    )
    assert status == 303 and location == "/console/numbers", stack.output()

    page = parse(client.save(notify_email=OPS))
    assert subscriptions(stack) == {("email", OPS): {"number": [NUMBER]}}
    listed = page.by_id("notify-changes")
    assert listed is not None and OPS in listed.text
    assert page.all(class_="error") == []  # the fallback was republished: the stack configures its bucket

    page = parse(client.save(notify_email=""))
    assert subscriptions(stack) == {}
    assert page.all(class_="error") == []
