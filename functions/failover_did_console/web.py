"""Request plumbing shared by the console's routes: who is asking (the session verified, the role), the
posted form and the query read and bounded, pages and redirects."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2 as Event

from failover_did_console import auth, forms, session
from failover_did_console.auth import Cognito, InvalidToken, SignInRefused, SignInUnavailable, TokenExpired, User
from failover_did_console.pages.paging import is_number
from failover_did_console.render import HTML, render
from failover_did_console.session import Session
from failover_did_console.settings import settings

logger = Logger(service="failover-did-console")

LOGIN = "/console/login"
HOME = "/console/numbers"
MAX_BODY_BYTES = 64 * 1024
MAX_EMAIL_CHARS = 254
MAX_PASSWORD_CHARS = 256
WRONG_PASSWORD = "Wrong email or password"


class SignedOut(Exception):
    """No valid session: to the login page (clearing cookies that proved nothing)."""

    def __init__(self, clear: bool) -> None:
        super().__init__("signed out")
        self.clear = clear


class Refused(Exception):
    """A signed-in request that may not do this (403), e.g. a viewer's edit or a missing CSRF token."""


class NoAccess(Exception):
    """Signed in, but in neither the admin nor the viewer group (the page still offers to sign out)."""

    def __init__(self, visitor: Visitor) -> None:
        super().__init__("no access")
        self.visitor = visitor


class BadRequest(Exception):
    """A request we cannot take (400); the message names the value and the reason."""


class NotFound(Exception):
    """No such page or number (404)."""


@dataclass(frozen=True)
class Visitor:
    user: User
    session: Session

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.session)


# --- request plumbing -----------------------------------------------------------------------------


def cookies_of(event: Event) -> dict[str, str]:
    return session.read_cookies(event.cookies or [])


# The cookies of a session refreshed during this request, for the handler to add to whatever it answers.
renewed: ContextVar[tuple[Cookie, ...]] = ContextVar("renewed", default=())


def visitor_of(event: Event) -> Visitor:
    """The signed-in visitor; SignedOut without a valid session. An expired ID token is renewed with the
    session's refresh token first; a refresh Cognito refuses signs out (SignInUnavailable when it cannot
    be asked: the session is kept for a retry)."""
    found = session.session_of(cookies_of(event))
    if found is None:
        raise SignedOut(clear=False)
    try:
        return Visitor(auth.verify(found.id_token, settings()), found)
    except TokenExpired as error:
        if not found.refresh_token:
            logger.info("session expired", extra={"reason": str(error)[:200]})
            raise SignedOut(clear=True) from error
    except InvalidToken as error:
        logger.info("session refused", extra={"reason": str(error)[:200]})
        raise SignedOut(clear=True) from error
    return _refreshed(found)


def _refreshed(found: Session) -> Visitor:
    assert found.refresh_token
    try:
        tokens = Cognito(settings()).refresh(found.refresh_token)
        user = auth.verify(tokens.id_token, settings())  # never trust a token we did not check
    except (SignInRefused, InvalidToken) as error:
        logger.info("session refresh refused", extra={"reason": str(error)[:200]})
        raise SignedOut(clear=True) from error
    logger.info("session refreshed", extra={"user": user.email})
    renewed.set(tuple(session.refreshed(tokens.id_token, tokens.access_token)))
    return Visitor(user, replace(found, id_token=tokens.id_token, access_token=tokens.access_token))


def reader_of(event: Event) -> Visitor:
    """A visitor who may read (admin or viewer); NoAccess otherwise."""
    visitor = visitor_of(event)
    if not visitor.user.can_read:
        raise NoAccess(visitor)
    return visitor


def admin_of(event: Event) -> Visitor:
    """An admin whose session Cognito still honours; Refused (403) for a viewer. The ID token alone would let
    a removed admin (`failover-did console remove-user`) change rules until it expires: each admin page asks
    Cognito first, and a revoked session is signed out."""
    visitor = reader_of(event)
    if not visitor.user.is_admin:
        raise Refused("Only admins can change rules or run drills; ask an admin.")
    if not visitor.session.access_token:
        raise SignedOut(clear=True)
    try:
        Cognito(settings()).confirm(visitor.session.access_token)
    except SignInRefused as error:
        logger.info("session revoked", extra={"user": visitor.user.email, "reason": str(error)[:200]})
        raise SignedOut(clear=True) from error
    except SignInUnavailable as error:
        logger.error("session not confirmed: Cognito unavailable", extra={"reason": str(error)[:200]})
        raise Refused(
            "Cognito could not confirm your session just now; try again in a moment "
            "(rules can also be changed with `failover-did rules apply`)."
        ) from error
    return visitor


def form_of(event: Event) -> dict[str, str]:
    """The posted form (application/x-www-form-urlencoded), bounded; 400 for anything else."""
    kind = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest(f"the form must be posted as application/x-www-form-urlencoded, not {kind[:60]!r}")
    try:
        body = event.decoded_body or ""
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest("the form is not UTF-8 text") from error
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the form is {len(body):,} bytes; at most {MAX_BODY_BYTES:,}")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=forms.MAX_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the form cannot be read: {str(error)[:100]}") from error
    return dict(pairs)


def posted(event: Event, visitor: Visitor) -> dict[str, str]:
    """The posted form of a signed-in visitor, once its CSRF token checks out (403 otherwise)."""
    fields = form_of(event)
    if not session.csrf_ok(visitor.session, fields.get("csrf", "")):
        raise Refused("This form is out of date or was not sent by the console (missing CSRF token); reload the page.")
    return fields


def query_of(event: Event) -> dict[str, str]:
    """The query string's fields, decoded here from the raw query (API Gateway and a local server standing
    in for it agree on that one); each value bounded."""
    raw = str(event.raw_event.get("rawQueryString") or "")[:4096]
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=20, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the address's query cannot be read: {str(error)[:100]}") from error
    return {k: v[:200] for k, v in pairs}


def number_of(raw: str) -> str:
    number = unquote(raw).strip()
    if not is_number(number):
        raise NotFound(f"{number[:40]!r} is not a phone number in E.164 form")
    return number


def now() -> datetime:
    return datetime.now(UTC)


def page(
    template: str, visitor: Visitor | None, status: int = 200, cookies: list[Cookie] | None = None, **context: Any
) -> Response[str]:
    body = render(
        template,
        user=visitor.user if visitor else None,
        csrf=visitor.csrf if visitor else "",
        **context,
    )
    return Response(status, HTML, body, cookies=cookies or [])


def redirect(location: str, cookies: list[Cookie] | None = None, status: int = 303) -> Response[str]:
    return Response(status, HTML, "", headers={"Location": location}, cookies=cookies or [])


# --- sign-in and sign-out -----------------------------------------------------------------------------
