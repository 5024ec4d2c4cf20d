"""Who gets in: sign-in through Cognito (moto), the ID token verified on every request against the pool's
JWKS (served on loopback), its expiry, audience, issuer and use; the new-password challenge; sign-out;
the login form's CSRF token; the headers and cookie attributes."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from tests.integration.console.conftest import ADMIN, NEWCOMER, NOBODY, PASSWORD, TEMPORARY, VIEWER, Browser, Pool

PAGES = [
    "/console/numbers",
    "/console/numbers/%2B14155550100",
    "/console/numbers/%2B14155550100/edit",
    "/console/alerts",
    "/console/missed",
    "/console/new",
    "/console/numbers/%2B14155550100/delete",
]


def no_data(body: str) -> bool:
    return "+14155550100" not in body and "pbx.example.com" not in body


@pytest.mark.parametrize("path", PAGES)
def test_no_session_redirects_to_login_and_shows_no_data(browser: Browser, rules: Any, path: str) -> None:
    page = browser.get(path)
    assert page.status == 302
    assert page.location == "/console/login"
    assert no_data(page.body)


def test_a_post_without_a_session_changes_nothing(browser: Browser, rules: Any) -> None:
    from failover_did.store.rules_store import get_stored

    before = get_stored("+14155550100")
    page = browser.post("/console/numbers/%2B14155550100/delete", {"confirm": "delete", "csrf": "x"})
    assert page.status == 303 and page.location == "/console/login"
    assert get_stored("+14155550100") == before


def test_console_root_sends_to_login_then_to_numbers(browser: Browser, rules: Any) -> None:
    assert browser.get("/console").location == "/console/login"
    assert browser.sign_in(ADMIN).location == "/console/numbers"
    assert browser.get("/console").location == "/console/numbers"
    page = browser.get("/console/numbers")
    assert page.status == 200
    assert page.html.one("tr", data_number="+14155550100")
    assert ADMIN in page.body


@pytest.mark.parametrize("email,password", [(ADMIN, "wrong-password"), ("stranger@example.com", PASSWORD), (ADMIN, "")])
def test_a_wrong_password_shows_an_error_and_nothing_else(
    browser: Browser, rules: Any, email: str, password: str
) -> None:
    page = browser.sign_in(email, password)
    assert page.status == 401
    html = page.html
    assert html.one(class_="error").text == "Wrong email or password"
    assert html.by_id("login") is not None
    assert html.by_id("numbers") is None and html.by_id("logout") is None
    assert "fd_id" not in browser.jar
    assert no_data(page.body)
    assert browser.get("/console/numbers").location == "/console/login"


def test_the_login_form_needs_its_own_token(browser: Browser, rules: Any) -> None:
    page = browser.post("/console/login", {"email": ADMIN, "password": PASSWORD})
    assert page.status == 403
    assert "fd_id" not in browser.jar


def _moto_private_key() -> Any:
    return jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(load_resource("cognitoidp/resources/jwks-private.json")))


def _claims(pool: Pool, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool.id}",
        "aud": pool.client_id,
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
        "email": ADMIN,
        "cognito:groups": ["admin"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(pool: Pool, key: Any = None, **changes: Any) -> str:
    return jwt.encode(_claims(pool, **changes), key or _moto_private_key(), algorithm="RS256", headers={"kid": "dummy"})


def _forged(pool: Pool) -> dict[str, str]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    unsigned = jwt.encode(_claims(pool), "", algorithm="none")
    return {
        "signed by another key": _token(pool, stranger),
        "expired": _token(pool, iat=now - 7200, exp=now - 3600),
        "for another app client": _token(pool, aud="another-client"),
        "from another pool": _token(pool, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"),
        "an access token": _token(pool, token_use="access"),
        "without expiry": _token(pool, exp=None),
        "unsigned (alg none)": unsigned,
        "garbage": "not.a.token",
        "signature cut off": _token(pool).rsplit(".", 1)[0] + ".",
    }


def test_forged_expired_and_wrong_audience_tokens_are_signed_out(browser: Browser, pool: Pool, rules: Any) -> None:
    good = _token(pool)
    browser.jar["fd_id"] = good
    assert browser.get("/console/numbers").status == 200  # the same claims, signed by the pool's key
    for why, token in _forged(pool).items():
        browser.jar = {"fd_id": token}
        page = browser.get("/console/numbers")
        assert page.status == 302 and page.location == "/console/login", why
        assert no_data(page.body), why
        assert "fd_id" not in browser.jar, f"{why}: the cookie is cleared"


def test_the_new_password_challenge(browser: Browser, rules: Any) -> None:
    page = browser.sign_in(NEWCOMER, TEMPORARY)
    assert page.status == 200
    form = page.html.by_id("new-password")
    assert form is not None
    token = page.html.input_value("csrf") or ""
    differ = browser.post(
        "/console/login/new-password", {"csrf": token, "new_password": "Brand-new-pass-9!", "confirm": "other"}
    )
    assert differ.status == 400 and "differ" in differ.html.one(class_="error").text
    token = differ.html.input_value("csrf") or ""
    done = browser.post(
        "/console/login/new-password",
        {"csrf": token, "new_password": "Brand-new-pass-9!", "confirm": "Brand-new-pass-9!"},
    )
    assert done.status == 303 and done.location == "/console/numbers"
    assert browser.get("/console/numbers").html.one("tr", data_number="+14155550100")
    again = Browser()
    assert again.sign_in(NEWCOMER, "Brand-new-pass-9!").location == "/console/numbers"


def test_the_challenge_cannot_be_answered_without_its_session(browser: Browser, rules: Any) -> None:
    page = browser.sign_in(NEWCOMER, TEMPORARY)
    token = page.html.input_value("csrf") or ""
    browser.jar.pop("fd_challenge")
    page = browser.post(
        "/console/login/new-password", {"csrf": token, "new_password": "X-1aaaaaaa", "confirm": "X-1aaaaaaa"}
    )
    assert page.status == 403 and "fd_id" not in browser.jar


def test_sign_out_clears_the_session_and_needs_the_csrf_token(admin: Browser) -> None:
    assert admin.post("/console/logout", {}).status == 403
    assert "fd_id" in admin.jar
    page = admin.post("/console/logout", {"csrf": admin.csrf()})
    assert page.status == 303 and page.location == "/console/login"
    assert "fd_id" not in admin.jar and "fd_access" not in admin.jar
    assert admin.get("/console/numbers").location == "/console/login"


def test_a_user_in_no_group_gets_no_data(browser: Browser, rules: Any) -> None:
    assert browser.sign_in(NOBODY).status == 303
    for path in ("/console/numbers", "/console/alerts", "/console/missed", "/console/numbers/%2B14155550100"):
        page = browser.get(path)
        assert page.status == 403, path
        assert "ask an admin for access" in page.body
        assert no_data(page.body)
    html = browser.get("/console/numbers").html
    assert html.by_id("logout") is not None and html.all("nav") == []
    assert browser.post("/console/logout", {"csrf": html.input_value("csrf") or ""}).location == "/console/login"
    assert "fd_id" not in browser.jar


def test_every_response_carries_the_security_headers_and_strict_cookies(browser: Browser, rules: Any) -> None:
    login = browser.get("/console/login")
    signed = browser.sign_in(VIEWER)
    for page in (login, signed, browser.get("/console/numbers"), browser.get("/console/nope")):
        csp = page.headers["Content-Security-Policy"]
        for part in (
            "default-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ):
            assert part in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
    assert signed.cookies
    for cookie in signed.cookies + login.cookies:
        for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/console"):
            assert attribute in cookie, cookie
    css = browser.get("/console/static/console.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "<script" not in browser.get("/console/numbers").body


def test_no_token_appears_in_a_page(browser: Browser, rules: Any) -> None:
    browser.sign_in(ADMIN)
    body = browser.get("/console/numbers").body + browser.get("/console/numbers/%2B14155550100").body
    assert browser.jar["fd_id"] not in body and browser.jar["fd_access"] not in body


def test_unreadable_signing_keys_keep_the_session_and_answer_503(
    browser: Browser, pool: Pool, rules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did_console import auth
    from failover_did_console.settings import settings

    browser.sign_in(ADMIN)
    monkeypatch.setenv("CONSOLE_JWKS_URL", "http://127.0.0.1:9/jwks.json")  # nothing listens there
    settings.cache_clear()
    auth._jwks_client.cache_clear()
    page = browser.get("/console/numbers")
    assert page.status == 503 and no_data(page.body)
    assert "fd_id" in browser.jar  # not signed out for our own outage
