"""Test helpers: signed, Twilio-shaped API Gateway events delivered to the real Lambda handler."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from failover_did_cli.apigw import LambdaContext, http_event

TOKEN = os.environ["TWILIO_AUTH_TOKEN"]  # set by tests/conftest.py
HOST = "abc123.execute-api.us-east-1.amazonaws.com"

RULES_YAML = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sip:oncall@dr.example.net", screen: true}
    triggers: [timeout, busy, failed, "503"]
    final: {say: "Nobody is here.", voicemail: true}
  "+14155550200":
    primary: {target: "sip:sales@pbx.example.com", timeout: 25}
    failover:
      - {target: "+14155550222"}
    triggers: [busy, failed, "5xx"]
"""


@dataclass
class Result:
    status: int
    body: str
    headers: dict[str, str]


class Webhook:
    """Sends Twilio-shaped, signed requests into failover_did.webhook.app.handler."""

    def __init__(self, host: str = HOST, stage_prefix: str = "") -> None:
        self.host = host
        self.stage_prefix = stage_prefix

    def url(self, path: str, query: str = "") -> str:
        return f"https://{self.host}{self.stage_prefix}{path}" + (f"?{query}" if query else "")

    def post(
        self,
        path: str,
        params: dict[str, str],
        query: str = "",
        *,
        signature: str | None = None,
        signed_url: str | None = None,
        body: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Result:
        from failover_did.webhook.app import handler

        sig = signature
        if sig is None:
            sig = RequestValidator(TOKEN).compute_signature(signed_url or self.url(path, query), params)
        headers = {
            "Host": self.host,
            "X-Forwarded-Proto": "https",
            "X-Twilio-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded",
            **(extra_headers or {}),
        }
        event = http_event(
            "POST",
            f"{self.stage_prefix}{path}",
            query=query,
            headers=headers,
            body=urlencode(params).encode() if body is None else body,
            stage=self.stage_prefix.strip("/") or "$default",
        )
        raw: dict[str, Any] = handler(event, LambdaContext())
        return Result(int(raw["statusCode"]), str(raw.get("body") or ""), dict(raw.get("headers") or {}))


def call_params(sid: str = "CA" + "1" * 32, to: str = "+14155550100", **extra: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": "+14155550999",
        "To": to,
        "Called": to,
        "Caller": "+14155550999",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def problems_of(text: str, **kwargs: Any) -> list[str]:
    """Every problem the validator names in a rules file (dedented) that it refuses."""
    from failover_did.rules.validate import RulesError, parse_rules_yaml

    with pytest.raises(RulesError) as err:
        parse_rules_yaml(textwrap.dedent(text), **kwargs)
    return err.value.problems


def one_problem(text: str, **kwargs: Any) -> str:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]
