"""Arbitrary requests into the console's handler, signed in as an admin (with the session's CSRF token) or
not: paths, queries, bodies, content types and cookies. Never a 5xx, never a traceback, never a change
to the rules unless the request was a well-formed signed-in save."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover_did.store.rules_store import get_stored
from tests.integration.console.conftest import Browser

ROUTES = [
    "/console",
    "/console/login",
    "/console/login/new-password",
    "/console/logout",
    "/console/numbers",
    "/console/numbers/%2B14155550100",
    "/console/numbers/%2B14155550100/edit",
    "/console/numbers/%2B14155550100/delete",
    "/console/numbers/%2B14155550100/drill",
    "/console/new",
    "/console/alerts",
    "/console/missed",
    "/console/static/console.css",
]
FIELDS = st.sampled_from(
    [
        "number",
        "version",
        "primary_target",
        "primary_timeout",
        "tier_target_1",
        "tier_timeout_3",
        "final_say",
        "sip_triggers",
        "action",
        "email",
        "password",
        "new_password",
        "confirm",
        "q",
        "status",
        "page",
        "kind",
        "from",
        "to",
        "notify_email",
        "monthly_failover_budget",
        "tier_target_0",
        "trigger_busy",
    ]
)
TEXT = st.text(max_size=40) | st.sampled_from(["add_tier", "remove_tier_1", "up_tier_2", "save", "+1415", "-1", "1e9"])


@st.composite
def requests(draw: Any) -> tuple[str, str, str, bytes, str]:
    method = draw(st.sampled_from(["GET", "POST", "POST", "PUT", "HEAD"]))
    path = draw(st.sampled_from(ROUTES))
    if draw(st.booleans()):
        path += draw(st.sampled_from(["", "/", "/x", "%00", "/..%2F..", "/" + quote(draw(st.text(max_size=10)))]))
    pairs = draw(st.lists(st.tuples(FIELDS | st.text(max_size=8), TEXT), max_size=8))
    query = (
        "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs[:3]) if draw(st.booleans()) else draw(st.text(max_size=20))
    )
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()
    if draw(st.booleans()):
        body = draw(st.binary(max_size=200))
    kind = draw(st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "", "multipart/form-data"]))
    return method, path, query, body, kind


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests(), signed_in=st.booleans(), with_csrf=st.booleans(), cookie=st.text(max_size=30))
def test_no_request_gets_a_5xx(
    admin: Browser, request: tuple[str, str, str, bytes, str], signed_in: bool, with_csrf: bool, cookie: str
) -> None:
    method, path, query, body, kind = request
    before = get_stored("+14155550100")
    jar = dict(admin.jar)
    b = Browser()
    b.jar = jar if signed_in else {"fd_id": cookie.replace(";", "")}
    if with_csrf and signed_in and method == "POST" and kind.startswith("application/x-www"):
        body += b"&csrf=" + admin.csrf().encode()
    page = b.request(method, path, query=query, body=body, headers={"Content-Type": kind} if kind else {})
    assert page.status < 500, (page.status, page.body[:500])
    assert "Traceback" not in page.body
    if not (signed_in and with_csrf):
        assert get_stored("+14155550100") == before
