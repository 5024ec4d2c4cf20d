"""The local stack's API Gateway events carry cookies as payload 2.0 does: a `cookies` list, no Cookie header."""

from __future__ import annotations

from failover_did_cli.apigw import http_event


def test_the_cookie_header_becomes_the_cookies_list() -> None:
    event = http_event("GET", "/console/numbers", headers={"Host": "h", "Cookie": "fd_id=a.b.c; fd_access=x=y;  "})
    assert event["cookies"] == ["fd_id=a.b.c", "fd_access=x=y"]
    assert "cookie" not in event["headers"] and event["headers"]["host"] == "h"


def test_no_cookie_header_no_cookies() -> None:
    assert "cookies" not in http_event("GET", "/console", headers={"Host": "h"})
    assert "cookies" not in http_event("GET", "/console", headers={"Cookie": " ; "})
