"""Twilio's signature scheme and the URL rebuilt from API Gateway events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover_did.settings import settings
from failover_did.webhook.signature import is_valid, public_base, signed_url
from failover_did_cli.apigw import http_event

# Twilio's documented example (Security > Validating Requests)
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_vector() -> None:
    assert is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "1235"}, DOC_SIGNATURE)
    assert not is_valid("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL.replace("foo=1", "foo=2"), DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, "")


def test_documented_vector_through_a_rebuilt_event_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    settings.cache_clear()
    event = http_event("POST", "/myapp.php", query="foo=1&bar=2", domain_name="mycompany.com")
    url = signed_url(event, public_base(event))
    assert url == DOC_URL
    assert is_valid(DOC_TOKEN, url, DOC_PARAMS, DOC_SIGNATURE)


def test_explicit_default_port_still_validates() -> None:
    assert is_valid(DOC_TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", DOC_PARAMS, DOC_SIGNATURE)


API = "abc.execute-api.us-east-1.amazonaws.com"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.mark.parametrize(
    ("domain", "path", "stage", "env", "expected"),
    [
        (API, "/voice", "$default", "", f"https://{API}"),
        (API, "/prod/voice/action", "prod", "", f"https://{API}/prod"),
        ("calls.example.com", "/voice", "$default", "", "https://calls.example.com"),
        (API, "/api/voice", "$default", "https://calls.example.com/api/", "https://calls.example.com/api"),
        (API, "/voice", "$default", "http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ],
)
def test_public_base(
    monkeypatch: pytest.MonkeyPatch, domain: str, path: str, stage: str, env: str, expected: str
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", env)
    assert public_base(http_event("POST", path, stage=stage, domain_name=domain)) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"Host": "evil.example", "X-Forwarded-Proto": "http"},
        {"Host": f"{API}:8443", "X-Forwarded-Proto": "http"},
        {"X-Forwarded-Host": "evil.example"},
    ],
)
def test_client_headers_never_choose_the_signed_url(monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]) -> None:
    """The URL checked comes from API Gateway's requestContext.domainName, whatever Host or proto is sent."""
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    event = http_event("POST", "/voice", headers=headers, domain_name=API)
    assert public_base(event) == f"https://{API}"


def test_an_event_without_a_domain_name_gets_no_host_from_the_headers() -> None:
    event = http_event("POST", "/voice", headers={"Host": "evil.example"})
    del event["requestContext"]["domainName"]
    assert public_base(event) == "https://"


def test_signed_url_keeps_the_raw_query() -> None:
    event = http_event("POST", "/prod/voice/action", query="tier=1&hop=2&x=%2B1", headers={"Host": "h"})
    assert signed_url(event, "https://h/prod") == "https://h/prod/voice/action?tier=1&hop=2&x=%2B1"
