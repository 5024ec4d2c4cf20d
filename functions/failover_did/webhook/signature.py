"""Twilio request signatures: the URL Twilio signed, rebuilt from an API Gateway HTTP API event."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from twilio.request_validator import RequestValidator

from failover_did.settings import settings

ROUTE_PREFIX = "/voice"
TOKEN_ENV = "TWILIO_AUTH_TOKEN"
TOKEN_PARAM_ENV = "TWILIO_AUTH_TOKEN_PARAM"
TOKEN_MAX_AGE = 300


class TokenUnavailable(Exception):
    """The auth token could not be read, so no request can be verified."""


def public_base(event: Mapping[str, Any]) -> str:
    """Our URL prefix as Twilio reaches it: PUBLIC_BASE_URL when set (a custom domain's base path, a
    tunnel, the local stack), else https and the domain API Gateway received the request on
    (`requestContext.domainName`, set by API Gateway, not by the client) plus whatever precedes /voice in
    the path (a stage). The client's Host and X-Forwarded-Proto headers are never used."""
    configured = settings().public_base_url
    if configured:
        return configured
    context = event.get("requestContext")
    domain = context.get("domainName") if isinstance(context, Mapping) else None
    return f"https://{domain if isinstance(domain, str) else ''}{_path_prefix(event)}"


def _path_prefix(event: Mapping[str, Any]) -> str:
    path = str(event.get("rawPath") or "")
    at = path.find(ROUTE_PREFIX)
    return path[:at] if at > 0 else ""


def signed_url(event: Mapping[str, Any], base: str) -> str:
    path = str(event.get("rawPath") or "")
    at = path.find(ROUTE_PREFIX)
    route = path[at:] if at >= 0 else path
    query = event.get("rawQueryString") or ""
    return f"{base}{route}?{query}" if query else f"{base}{route}"


class TokenSource:
    """The auth token: SSM SecureString in AWS (cached, last good value kept if SSM fails),
    the TWILIO_AUTH_TOKEN variable locally."""

    def __init__(self) -> None:
        self._last_good: str | None = None

    def get(self) -> str:
        name = os.environ.get(TOKEN_PARAM_ENV)
        if not name:
            token = os.environ.get(TOKEN_ENV)
            if not token:
                raise TokenUnavailable(f"set {TOKEN_ENV} (locally) or {TOKEN_PARAM_ENV} (in AWS)")
            return token
        # Imported here: Parameters costs ~0.3 s of cold start when nothing else needs boto3.
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_parameter(name, decrypt=True, max_age=TOKEN_MAX_AGE)
        except Exception as error:  # any SSM failure: keep verifying with the token we had
            if self._last_good is None:
                raise TokenUnavailable(f"cannot read SSM parameter {name}: {error}") from error
            return self._last_good
        self._last_good = str(value)
        return self._last_good


def is_valid(token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    if not signature or not signature.isascii():
        return False
    validator = RequestValidator(token)
    # The exact URL matches almost always; the library's full check (which also tries the URL with
    # and without an explicit port) runs only when it does not.
    if hmac.compare_digest(validator.compute_signature(url, dict(params)), signature):
        return True
    try:
        return bool(validator.validate(url, dict(params), signature))
    except ValueError:  # a Host header that is no URL authority ("[x", "h:99999"): not what Twilio signed
        return False
