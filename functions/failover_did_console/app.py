"""The console's Lambda handler: routes on /console, each checking the session, the role and (for every
POST) the CSRF token before it reads or writes anything; domain errors become pages here, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.typing import LambdaContext
from pynamodb.exceptions import PynamoDBException

from failover_did.rules.model import MAX_FAILOVER_TIERS
from failover_did.store.call_log import CallLogError
from failover_did.webhook.signature import TokenUnavailable
from failover_did_console import auth, forms, session
from failover_did_console.auth import Challenge, Cognito, InvalidToken, SignInRefused, SignInUnavailable, User
from failover_did_console.forms import FormRefused, Judgement, RuleForm
from failover_did_console.pages import alerts as alerts_page
from failover_did_console.pages import drill as drill_page
from failover_did_console.pages import missed as missed_page
from failover_did_console.pages import number as number_pages
from failover_did_console.pages import numbers as numbers_page
from failover_did_console.pages.paging import BadQuery, is_number
from failover_did_console.render import HTML, SECURITY_HEADERS, number_path, render, stylesheet
from failover_did_console.session import Session
from failover_did_console.settings import settings

logger = Logger(service="failover-did-console")
app = APIGatewayHttpResolver()

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


def _cookies() -> dict[str, str]:
    return session.read_cookies(app.current_event.cookies or [])


def _visitor() -> Visitor:
    found = session.session_of(_cookies())
    if found is None:
        raise SignedOut(clear=False)
    try:
        user = auth.verify(found.id_token, settings())
    except InvalidToken as error:
        logger.info("session refused", extra={"reason": str(error)[:200]})
        raise SignedOut(clear=True) from error
    return Visitor(user, found)


def _reader() -> Visitor:
    visitor = _visitor()
    if not visitor.user.can_read:
        raise NoAccess(visitor)
    return visitor


def _admin() -> Visitor:
    visitor = _reader()
    if not visitor.user.is_admin:
        raise Refused("Only admins can change rules or run drills; ask an admin.")
    return visitor


def _fields() -> dict[str, str]:
    """The posted form (application/x-www-form-urlencoded), bounded; 400 for anything else."""
    event = app.current_event
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


def _posted(visitor: Visitor) -> dict[str, str]:
    fields = _fields()
    if not session.csrf_ok(visitor.session, fields.get("csrf", "")):
        raise Refused("This form is out of date or was not sent by the console (missing CSRF token); reload the page.")
    return fields


def _query() -> dict[str, str]:
    """The query string's fields, decoded here from the raw query (API Gateway and a local server standing
    in for it agree on that one); each value bounded."""
    raw = str(app.current_event.raw_event.get("rawQueryString") or "")[:4096]
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=20, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the address's query cannot be read: {str(error)[:100]}") from error
    return {k: v[:200] for k, v in pairs}


def _number(raw: str) -> str:
    number = unquote(raw).strip()
    if not is_number(number):
        raise NotFound(f"{number[:40]!r} is not a phone number in E.164 form")
    return number


def _now() -> datetime:
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


@app.get("/console")
def home() -> Response[str]:
    try:
        _visitor()
    except SignedOut:
        return redirect(LOGIN, status=302)
    return redirect(HOME, status=302)


def _login_form(error: str = "", status: int = 200, email: str = "") -> Response[str]:
    token = session.new_login_token()
    return page("login.html", None, status, [session.login_cookie(token)], error=error, form_token=token, email=email)


@app.get(LOGIN)
def login_form() -> Response[str]:
    found = session.session_of(_cookies())
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
    return redirect(HOME, session.signed_in(result.id_token, result.access_token))


@app.post(LOGIN)
def login() -> Response[str]:
    fields = _fields()
    if not session.login_token_ok(_cookies(), fields.get("csrf", "")):
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


@app.post("/console/login/new-password")
def new_password() -> Response[str]:
    fields = _fields()
    cookies = _cookies()
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


@app.post("/console/logout")
def logout() -> Response[str]:
    visitor = _visitor()
    _posted(visitor)
    if visitor.session.access_token:
        try:
            Cognito(settings()).sign_out(visitor.session.access_token)
        except (SignInRefused, SignInUnavailable) as error:  # the cookies go whatever Cognito says
            logger.info("global sign-out failed", extra={"reason": str(error)[:200]})
    return redirect(LOGIN, session.signed_out())


# --- pages --------------------------------------------------------------------------------------------


@app.get("/console/static/console.css")
def css() -> Response[str]:
    return Response(200, "text/css; charset=utf-8", stylesheet(), headers={"Cache-Control": "max-age=300"})


@app.get(HOME)
def numbers() -> Response[str]:
    visitor = _reader()
    query = _query()
    deleted = query.get("deleted", "")
    notice = f"Deleted the rule of {deleted}." if is_number(deleted) else ""
    listing = numbers_page.listing(query, _now())
    return page("numbers.html", visitor, listing=listing, notice=notice, warnings=_warnings(), section="numbers")


@app.get("/console/numbers/<raw>")
def number(raw: str) -> Response[str]:
    visitor = _reader()
    wanted = _number(raw)
    found = number_pages.number_page(wanted, _now())
    if found is None:
        raise NotFound(f"{wanted} has no rule")
    query = _query()
    notice = "Saved." if query.get("saved") else ""
    return page("number.html", visitor, number=wanted, p=found, notice=notice, warnings=_warnings(), section="numbers")


WARNINGS = {
    "audit": "The change was saved, but its audit event could not be written (the console's log says why).",
    "fallback": (
        "The change was saved, but the number's static fallback document (its Voice Fallback URL) could not be "
        "updated: save again, or run `failover-did rules apply` (the console's log says why)."
    ),
}


def _warnings() -> list[str]:
    raw = str(app.current_event.raw_event.get("rawQueryString") or "")[:4096]
    codes = [v for k, v in parse_qsl(raw) if k == "warn"]
    return [WARNINGS[c] for c in dict.fromkeys(codes) if c in WARNINGS]


def _edit_page(
    visitor: Visitor, form: RuleForm, judgement: Judgement | None, *, new: bool, status: int = 200
) -> Response[str]:
    return page(
        "edit.html",
        visitor,
        status,
        form=form,
        judgement=judgement or Judgement(None),
        new=new,
        max_tiers=MAX_FAILOVER_TIERS,
        section="numbers",
    )


@app.get("/console/numbers/<raw>/edit")
def edit_form(raw: str) -> Response[str]:
    visitor = _admin()
    wanted = _number(raw)
    from failover_did.store import rules_store

    stored = rules_store.get_stored(wanted)
    if stored is None:
        raise NotFound(f"{wanted} has no rule")
    return _edit_page(visitor, forms.from_rule(stored.rule, stored.version), None, new=False)


def _submit(visitor: Visitor, fields: dict[str, str], number: str, *, new: bool) -> Response[str]:
    form = forms.from_fields(fields)
    action = forms.action_of(fields.get("action"))
    if action != "save":
        return _edit_page(visitor, forms.rearranged(form, action), None, new=new)
    outcome = number_pages.save(form, number, visitor.user.email, _now(), new=new)
    if isinstance(outcome, Judgement):
        return _edit_page(visitor, form, outcome, new=new, status=400)
    logger.info("rule saved", extra={"number": number, "by": visitor.user.email, "version": outcome.version})
    _log_shortfalls(number, outcome)
    warn = "".join(f"&warn={code}" for code in outcome.warnings)
    return redirect(f"{number_path(number)}?saved=1{warn}")


def _log_shortfalls(number: str, outcome: number_pages.Saved) -> None:
    for what, error in (("audit event", outcome.audit_error), ("static fallback", outcome.fallback_error)):
        if error:
            logger.error(f"{what} not written", extra={"number": number, "reason": error})


@app.post("/console/numbers/<raw>/edit")
def edit(raw: str) -> Response[str]:
    visitor = _admin()
    fields = _posted(visitor)
    wanted = _number(raw)
    return _submit(visitor, {**fields, "number": wanted}, wanted, new=False)


@app.get("/console/new")
def new_form() -> Response[str]:
    visitor = _admin()
    return _edit_page(visitor, forms.blank_form(), None, new=True)


@app.post("/console/new")
def new() -> Response[str]:
    visitor = _admin()
    fields = _posted(visitor)
    typed = fields.get("number", "").strip()
    return _submit(visitor, fields, typed, new=True)


@app.get("/console/numbers/<raw>/delete")
def delete_form(raw: str) -> Response[str]:
    visitor = _admin()
    wanted = _number(raw)
    found = number_pages.number_page(wanted, _now())
    if found is None:
        raise NotFound(f"{wanted} has no rule")
    return page("confirm_delete.html", visitor, number=wanted, p=found, section="numbers")


@app.post("/console/numbers/<raw>/delete")
def delete(raw: str) -> Response[str]:
    visitor = _admin()
    fields = _posted(visitor)
    wanted = _number(raw)
    if fields.get("confirm") != "delete":
        return redirect(f"{number_path(wanted)}/delete")
    deleted, outcome = number_pages.delete(wanted, visitor.user.email, _now())
    if deleted is None:
        raise NotFound(f"{wanted} has no rule")
    logger.info("rule deleted", extra={"number": wanted, "by": visitor.user.email})
    _log_shortfalls(wanted, outcome)
    warn = "".join(f"&warn={code}" for code in outcome.warnings)
    return redirect(f"{HOME}?deleted={quote(wanted)}{warn}")


@app.post("/console/numbers/<raw>/drill")
def drill(raw: str) -> Response[str]:
    visitor = _admin()
    _posted(visitor)
    wanted = _number(raw)
    url = drill_page.voice_url(settings(), app.current_event.raw_event)
    checks = drill_page.drill(wanted, url)
    passed = all(c.passed for c in checks)
    return page("drill.html", visitor, number=wanted, checks=checks, passed=passed, url=url, section="numbers")


@app.get("/console/alerts")
def alerts() -> Response[str]:
    visitor = _reader()
    return page("alerts.html", visitor, a=alerts_page.alerts(_query(), _now()), section="alerts")


@app.get("/console/missed")
def missed() -> Response[str]:
    visitor = _reader()
    return page("missed.html", visitor, m=missed_page.missed(_query(), _now()), section="missed")


# --- errors: one page each, never a traceback ------------------------------------------------------------


def _message(status: int, title: str, message: str, visitor: Visitor | None = None) -> Response[str]:
    return page("message.html", visitor, status, title=title, message=message)


def _maybe_visitor() -> Visitor | None:
    try:
        return _reader()
    except Exception:  # an error page shows the navigation only to a signed-in reader
        return None


@app.exception_handler(SignedOut)
def signed_out(error: SignedOut) -> Response[str]:
    status = 302 if app.current_event.http_method in ("GET", "HEAD") else 303
    return redirect(LOGIN, session.signed_out() if error.clear else [], status)


@app.exception_handler(NoAccess)
def no_access(error: NoAccess) -> Response[str]:
    message = "You are signed in, but not in the admin or viewer group: ask an admin for access."
    return _message(403, "No access yet", message, error.visitor)


@app.exception_handler(Refused)
def refused(error: Refused) -> Response[str]:
    return _message(403, "Not allowed", str(error), _maybe_visitor())


@app.exception_handler(FormRefused)
def form_refused(error: FormRefused) -> Response[str]:
    return _message(400, "The form cannot be read", str(error), _maybe_visitor())


@app.exception_handler(BadRequest)
def bad_request(error: BadRequest) -> Response[str]:
    return _message(400, "Bad request", str(error), _maybe_visitor())


@app.exception_handler(BadQuery)
def bad_query(error: BadQuery) -> Response[str]:
    return _message(400, "Bad filter", str(error), _maybe_visitor())


@app.exception_handler(NotFound)
def not_found(error: NotFound) -> Response[str]:
    return _message(404, "Not found", str(error), _maybe_visitor())


@app.not_found
def no_route(error: Exception) -> Response[str]:
    return _message(404, "Not found", "There is no such page in the console.")


@app.exception_handler(auth.KeysUnavailable)
def keys_unavailable(error: auth.KeysUnavailable) -> Response[str]:
    logger.warning("signing keys unavailable", extra={"reason": str(error)[:200]})
    return _message(503, "Sign-in cannot be checked", "The user pool's keys could not be read; try again in a minute.")


@app.exception_handler(SignInUnavailable)
def sign_in_unavailable(error: SignInUnavailable) -> Response[str]:
    logger.warning("Cognito unavailable", extra={"reason": str(error)[:200]})
    return _message(503, "Sign-in is unavailable", "Cognito could not be reached; try again in a minute.")


@app.exception_handler(drill_page.VoiceUrlUnknown)
def voice_url_unknown(error: drill_page.VoiceUrlUnknown) -> Response[str]:
    return _message(503, "The drill cannot run", str(error), _maybe_visitor())


@app.exception_handler(TokenUnavailable)
def token_unavailable(error: TokenUnavailable) -> Response[str]:
    logger.warning("auth token unavailable", extra={"reason": str(error)[:200]})
    return _message(503, "The drill cannot run", "The webhook's auth token cannot be read; try again in a minute.")


def _store_down(error: Exception) -> Response[str]:
    logger.warning("store unavailable", extra={"reason": str(error)[:200]})
    return _message(503, "The tables cannot be reached", "DynamoDB did not answer; try again in a minute.")


@app.exception_handler(PynamoDBException)
def store_unavailable(error: PynamoDBException) -> Response[str]:
    return _store_down(error)


@app.exception_handler(CallLogError)
def call_log_unavailable(error: CallLogError) -> Response[str]:
    return _store_down(error)


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return _message(500, "Something went wrong", "The console hit an error of its own; it is logged.")


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = app.resolve(event, context)
    headers = response.setdefault("headers", {})
    headers.update(SECURITY_HEADERS)
    headers.setdefault("Cache-Control", "no-store")
    return response
