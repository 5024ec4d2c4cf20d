"""Sessions that last a shift (moto's Cognito): sign-in keeps Cognito's refresh token in its own strict
cookie; an expired ID token is renewed with it (REFRESH_TOKEN_AUTH) before the visitor counts as signed out,
and a form opened before the renewal still posts; a refresh Cognito refuses signs out; an expired token
that is not genuine is never renewed; sign-out revokes the refresh token."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from failover_did_console import auth
from failover_did_console.settings import settings
from tests.integration.console.conftest import ADMIN, Browser, Pool
from tests.integration.console.test_console_auth import _token


def expired(pool: Pool, key: Any = None) -> str:
    now = int(time.time())
    return _token(pool, key, iat=now - 7200, exp=now - 3600)


def refresh_works(pool: Pool, refresh_token: str) -> bool:
    try:
        pool.cognito.initiate_auth(
            AuthFlow="REFRESH_TOKEN_AUTH", ClientId=pool.client_id, AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    except ClientError:
        return False
    return True


def test_sign_in_keeps_the_refresh_token_in_a_strict_cookie(browser: Browser, pool: Pool, rules: Any) -> None:
    signed = browser.sign_in(ADMIN)
    (cookie,) = [c for c in signed.cookies if c.startswith("fd_refresh=")]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/console"):
        assert attribute in cookie
    assert refresh_works(pool, browser.jar["fd_refresh"])
    assert browser.jar["fd_refresh"] not in browser.get("/console/numbers").body


def test_an_expired_id_token_is_renewed_and_the_page_served(admin: Browser, pool: Pool) -> None:
    admin.jar["fd_id"] = expired(pool)
    page = admin.get("/console/numbers")
    assert page.status == 200, page.location
    assert page.html.one("tr", data_number="+14155550100") and ADMIN in page.body
    renewed = [c for c in page.cookies if c.startswith("fd_id=")]
    assert renewed and all("HttpOnly" in c and "SameSite=Strict" in c for c in renewed)
    assert auth.verify(admin.jar["fd_id"], settings()).email == ADMIN  # the browser now holds a good token
    assert admin.get("/console/numbers").cookies == []  # renewed once, not on every request


def test_a_form_opened_before_the_renewal_still_posts(admin: Browser, pool: Pool) -> None:
    csrf = admin.csrf("/console/numbers/%2B14155550100")
    admin.jar["fd_id"] = expired(pool)
    page = admin.post("/console/numbers/%2B14155550100/delete", {"csrf": csrf})  # no confirmation: asks again
    assert page.status == 303 and page.location == "/console/numbers/%2B14155550100/delete"


def test_a_refused_refresh_signs_out(admin: Browser, pool: Pool) -> None:
    admin.jar["fd_id"] = expired(pool)
    admin.jar["fd_refresh"] = "not-a-refresh-token"
    page = admin.get("/console/numbers")
    assert page.status == 302 and page.location == "/console/login"
    assert "+14155550100" not in page.body
    assert "fd_id" not in admin.jar and "fd_refresh" not in admin.jar


def test_a_refresh_token_revoked_elsewhere_signs_out(admin: Browser, pool: Pool) -> None:
    pool.cognito.admin_user_global_sign_out(UserPoolId=pool.id, Username=ADMIN)
    admin.jar["fd_id"] = expired(pool)
    page = admin.get("/console/numbers")
    assert page.status == 302 and page.location == "/console/login"
    assert "fd_refresh" not in admin.jar


def test_an_expired_token_of_another_key_is_not_renewed(admin: Browser, pool: Pool) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refresh = admin.jar["fd_refresh"]
    admin.jar["fd_id"] = expired(pool, stranger)
    page = admin.get("/console/numbers")
    assert page.status == 302 and page.location == "/console/login"
    assert "fd_id" not in admin.jar and "fd_refresh" not in admin.jar
    assert refresh_works(pool, refresh)  # refused without asking Cognito: the forged token proved nothing


@pytest.mark.parametrize("renew_first", [False, True])
def test_sign_out_revokes_the_refresh_token(admin: Browser, pool: Pool, renew_first: bool) -> None:
    refresh = admin.jar["fd_refresh"]
    csrf = admin.csrf()
    if renew_first:  # the hour is up: sign-out renews the tokens, then revokes them
        admin.jar["fd_id"] = expired(pool)
    page = admin.post("/console/logout", {"csrf": csrf})
    assert page.status == 303 and page.location == "/console/login"
    assert not any(name in admin.jar for name in ("fd_id", "fd_access", "fd_refresh"))
    assert not refresh_works(pool, refresh)
