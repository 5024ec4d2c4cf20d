"""Signing in and out: the login form, Cognito's USER_PASSWORD_AUTH and its new-password challenge, and
sign-out (cookies cleared, Cognito's GlobalSignOut)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from failover_did_console import auth, session
from failover_did_console.auth import Challenge, Cognito, InvalidToken, SignInRefused, SignInUnavailable
from failover_did_console.settings import settings
from failover_did_console.web import (
    HOME,
    LOGIN,
    MAX_EMAIL_CHARS,
    MAX_PASSWORD_CHARS,
    WRONG_PASSWORD,
    SignedOut,
    cookies_of,
    form_of,
    logger,
    page,
    posted,
    redirect,
    visitor_of,
)

router = APIGatewayHttpRouter()


@router.get("/console")
def home() -> Response[str]:
    try:
        visitor_of(router.current_event)
    except SignedOut:
        return redirect(LOGIN, status=302)
    return redirect(HOME, status=302)


def _login_form(error: str = "", status: int = 200, email: str = "") -> Response[str]:
    token = session.new_login_token()
    return page("login.html", None, status, [session.login_cookie(token)], error=error, form_token=token, email=email)


@router.get(LOGIN)
def login_form() -> Response[str]:
    found = session.session_of(cookies_of(router.current_event))
    if found is not None:
        try:
            auth.verify(found.id_token, settings())
            return redirect(HOME, status=302)
        except InvalidToken:
            pass
    return _login_form()


def _signed_in(result: auth.Tokens) -> Response[str]:
    user = auth.verify(result.id_token, settings())  # never trust a token we did not check
    logger.info("signed in", extra={"user": user.email})
    return redirect(HOME, session.signed_in(result.id_token, result.access_token, result.refresh_token))


@router.post(LOGIN)
def login() -> Response[str]:
    fields = form_of(router.current_event)
    if not session.login_token_ok(cookies_of(router.current_event), fields.get("csrf", "")):
        return _login_form("The sign-in form had expired; please sign in again.", 403)
    email = fields.get("email", "").strip()
    password = fields.get("password", "")
    if not email or not password or len(email) > MAX_EMAIL_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return _login_form(WRONG_PASSWORD, 401)
    try:
        result = Cognito(settings()).sign_in(email, password)
    except SignInRefused as refusal:
        logger.info("sign-in refused", extra={"reason": refusal.reason})
        return _login_form(WRONG_PASSWORD, 401)
    if isinstance(result, Challenge):
        token = session.new_login_token()
        cookies = [*session.challenge(result.session, email), session.login_cookie(token)]
        return page("new_password.html", None, 200, cookies, error="", form_token=token, email=email)
    return _signed_in(result)


@router.post("/console/login/new-password")
def new_password() -> Response[str]:
    fields = form_of(router.current_event)
    cookies = cookies_of(router.current_event)
    pending = session.challenge_of(cookies)
    if not session.login_token_ok(cookies, fields.get("csrf", "")) or pending is None:
        return _login_form("The sign-in took too long; please sign in again.", 403)
    challenge_session, email = pending
    password, confirm = fields.get("new_password", ""), fields.get("confirm", "")
    error = ""
    if not password or len(password) > MAX_PASSWORD_CHARS:
        error = f"Choose a new password of 1 to {MAX_PASSWORD_CHARS} characters."
    elif password != confirm:
        error = "The two passwords differ; type the same new password twice."
    if error:
        token = session.new_login_token()
        return page(
            "new_password.html", None, 400, [session.login_cookie(token)], error=error, form_token=token, email=email
        )
    try:
        result = Cognito(settings()).new_password(email, challenge_session, password)
    except SignInRefused as refusal:
        if refusal.reason == "InvalidPasswordException":
            token = session.new_login_token()
            message = f"Cognito refused that password: {refusal.message[:300]}"
            return page(
                "new_password.html",
                None,
                400,
                [session.login_cookie(token)],
                error=message,
                form_token=token,
                email=email,
            )
        logger.info("new password refused", extra={"reason": refusal.reason})
        return _login_form("The sign-in took too long; please sign in again.", 401)
    if isinstance(result, Challenge):
        return _login_form("Cognito asks for something the console cannot do; ask an admin.", 401)
    return _signed_in(result)


@router.post("/console/logout")
def logout() -> Response[str]:
    visitor = visitor_of(router.current_event)
    posted(router.current_event, visitor)
    if visitor.session.access_token:
        try:
            Cognito(settings()).sign_out(visitor.session.access_token)
        except (SignInRefused, SignInUnavailable) as error:  # the cookies go whatever Cognito says
            logger.info("global sign-out failed", extra={"reason": str(error)[:200]})
    return redirect(LOGIN, session.signed_out())
