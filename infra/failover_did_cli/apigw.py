"""API Gateway HTTP API (payload 2.0) events, as API Gateway builds them for a Lambda proxy."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def http_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    source_ip: str = "127.0.0.1",
    stage: str = "$default",
    domain_name: str | None = None,
) -> dict[str, Any]:
    """The event API Gateway would hand the Lambda for this request (header names lower-cased).

    `domain_name` is the domain the request came in on, which API Gateway sets itself in
    `requestContext.domainName` (the execute-api or custom domain); a server standing in for API Gateway
    passes its own listen authority. Without it, the Host header stands in, as for a request that
    reached API Gateway through that domain."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    # Payload 2.0 moves the Cookie header into `cookies`, one entry per cookie.
    cookie_header = lowered.pop("cookie", "")
    cookies = [c.strip() for c in cookie_header.split(";") if c.strip()]
    host = domain_name or lowered.get("host", "localhost")
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = text
    if query:
        params: dict[str, str] = {}
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    return event


@dataclass
class LambdaContext:
    """Enough of the Lambda context object for Powertools."""

    function_name: str = "failover-did-voice"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:failover-did-voice"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    log_group_name: str = "/aws/lambda/failover-did-voice"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
