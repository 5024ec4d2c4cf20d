"""The signed-in session in cookies (HttpOnly, Secure, SameSite=Strict, Path=/console), and the CSRF token
of its forms: an HMAC keyed by a hash of the session's refresh token (else its ID token), so it needs no
secret of ours and dies with the session. Before sign-in, the login and new-password forms carry a random
token that must match a cookie set with the form (double submit)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from aws_lambda_powertools.shared.cookies import Cookie, SameSite

PATH = "/console"
ID_COOKIE = "fd_id"
ACCESS_COOKIE = "fd_access"
REFRESH_COOKIE = "fd_refresh"  # Cognito's refresh token: new ID tokens through a shift
LOGIN_COOKIE = "fd_login"  # the pre-sign-in form token
CHALLENGE_COOKIE = "fd_challenge"  # Cognito's new-password challenge session
CHALLENGE_USER_COOKIE = "fd_challenge_user"
CHALLENGE_SECONDS = 180  # Cognito's challenge session lasts 3 minutes
LOGIN_SECONDS = 3600
MAX_COOKIE_CHARS = 8192
_ALL = (ID_COOKIE, ACCESS_COOKIE, REFRESH_COOKIE, LOGIN_COOKIE, CHALLENGE_COOKIE, CHALLENGE_USER_COOKIE)


@dataclass(frozen=True)
class Session:
    id_token: str
    access_token: str | None = None
    refresh_token: str | None = None


def read_cookies(headers: Iterable[str]) -> dict[str, str]:
    """Name -> value of the request's cookies (HTTP API v2 passes them as `cookies`, one `a=b` each; a
    header may also hold several `a=b; c=d`). The first of a repeated name wins; oversized ones are dropped."""
    found: dict[str, str] = {}
    for header in headers:
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name in _ALL and name not in found and len(value) <= MAX_COOKIE_CHARS:
                found[name] = value
    return found


def session_of(cookies: dict[str, str]) -> Session | None:
    token = cookies.get(ID_COOKIE)
    if not token:
        return None
    return Session(token, cookies.get(ACCESS_COOKIE) or None, cookies.get(REFRESH_COOKIE) or None)


def _cookie(name: str, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(
        name=name,
        value=value,
        path=PATH,
        secure=True,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
        max_age=max_age,
    )


def expired(name: str) -> Cookie:
    return _cookie(name, "", max_age=0)


def signed_in(id_token: str, access_token: str, refresh_token: str | None = None) -> list[Cookie]:
    """The session's cookies (ending with the browser; once the ID token expires, the refresh token gets
    a new one until Cognito stops honouring it)."""
    return [
        _cookie(ID_COOKIE, id_token),
        _cookie(ACCESS_COOKIE, access_token),
        *([_cookie(REFRESH_COOKIE, refresh_token)] if refresh_token else []),
        expired(LOGIN_COOKIE),
        expired(CHALLENGE_COOKIE),
        expired(CHALLENGE_USER_COOKIE),
    ]


def refreshed(id_token: str, access_token: str) -> list[Cookie]:
    """The new tokens of a refreshed session (the refresh token cookie stays as it is)."""
    return [_cookie(ID_COOKIE, id_token), _cookie(ACCESS_COOKIE, access_token)]


def signed_out() -> list[Cookie]:
    return [expired(name) for name in _ALL]


def challenge(session: str, email: str) -> list[Cookie]:
    return [
        _cookie(CHALLENGE_COOKIE, session, CHALLENGE_SECONDS),
        _cookie(CHALLENGE_USER_COOKIE, email.encode().hex(), CHALLENGE_SECONDS),
    ]


def challenge_of(cookies: dict[str, str]) -> tuple[str, str] | None:
    """The pending new-password challenge: (Cognito's session, the email), or None."""
    session, user = cookies.get(CHALLENGE_COOKIE), cookies.get(CHALLENGE_USER_COOKIE)
    if not session or not user:
        return None
    try:
        return session, bytes.fromhex(user).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def login_cookie(token: str) -> Cookie:
    return _cookie(LOGIN_COOKIE, token, LOGIN_SECONDS)


def login_token_ok(cookies: dict[str, str], submitted: str) -> bool:
    token = cookies.get(LOGIN_COOKIE, "")
    return bool(token) and hmac.compare_digest(token.encode(), submitted.encode())


def csrf_token(session: Session) -> str:
    # Keyed by the refresh token when there is one: it outlives the hourly ID tokens, so a form opened
    # before a refresh still posts after it.
    key = hashlib.sha256((session.refresh_token or session.id_token).encode()).digest()
    return hmac.new(key, b"failover-did console form", hashlib.sha256).hexdigest()


def csrf_ok(session: Session, submitted: str) -> bool:
    return hmac.compare_digest(csrf_token(session).encode(), submitted.encode())
