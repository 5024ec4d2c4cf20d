"""Shared fixtures. The environment is set before any test module imports the store, whose table
names and region are read at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    TWILIO_AUTH_TOKEN="test-auth-token",
    POWERTOOLS_METRICS_NAMESPACE="FailoverDid",
    POWERTOOLS_LOG_LEVEL="WARNING",
)
for key in (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "FAILOVER_DID_LOCAL",
    "FAILOVER_DID_STACK",
    "FALLBACK_BUCKET",
    "FALLBACK_BASE_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_AUTH_TOKEN_PARAM",
):
    os.environ.pop(key, None)

from failover_did.settings import settings  # noqa: E402  (after the environment above)

TOKEN = os.environ["TWILIO_AUTH_TOKEN"]


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """A command run in-process aims boto3 at its stack by setting AWS_* variables, and settings are
    cached: neither may outlive the test that caused it."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
    settings.cache_clear()


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probes may reach loopback (the tests' own SIP and HTTP peers), as in the local stack."""
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
    settings.cache_clear()
