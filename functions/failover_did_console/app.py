"""The console's Lambda handler: routes on /console, each checking the session, the role and (for every
POST) the CSRF token before it reads or writes anything; domain errors become pages here, once."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pynamodb.exceptions import PynamoDBException

from failover_did.rules.model import MAX_FAILOVER_TIERS
from failover_did.store.call_log import CallLogError
from failover_did.webhook.signature import TokenUnavailable
from failover_did_console import auth, forms, session, signin
from failover_did_console.auth import SignInUnavailable
from failover_did_console.forms import FormRefused, Judgement, RuleForm
from failover_did_console.pages import alerts as alerts_page
from failover_did_console.pages import drill as drill_page
from failover_did_console.pages import missed as missed_page
from failover_did_console.pages import number as number_pages
from failover_did_console.pages import numbers as numbers_page
from failover_did_console.pages.paging import BadQuery, is_number
from failover_did_console.render import SECURITY_HEADERS, number_path, stylesheet
from failover_did_console.settings import settings
from failover_did_console.web import (
    HOME,
    LOGIN,
    BadRequest,
    NoAccess,
    NotFound,
    Refused,
    SignedOut,
    Visitor,
    admin_of,
    logger,
    now,
    number_of,
    page,
    posted,
    query_of,
    reader_of,
    redirect,
    renewed,
)

app = APIGatewayHttpResolver()
app.include_router(signin.router)


# --- pages --------------------------------------------------------------------------------------------


@app.get("/console/static/console.css")
def css() -> Response[str]:
    return Response(200, "text/css; charset=utf-8", stylesheet(), headers={"Cache-Control": "max-age=300"})


@app.get(HOME)
def numbers() -> Response[str]:
    visitor = reader_of(app.current_event)
    query = query_of(app.current_event)
    deleted = query.get("deleted", "")
    notice = f"Deleted the rule of {deleted}." if is_number(deleted) else ""
    listing = numbers_page.listing(query, now())
    return page(
        "numbers.html",
        visitor,
        listing=listing,
        notice=notice,
        warnings=_warnings(),
        notified=_notify_lines(),
        section="numbers",
    )


@app.get("/console/numbers/<raw>")
def number(raw: str) -> Response[str]:
    visitor = reader_of(app.current_event)
    wanted = number_of(raw)
    found = number_pages.number_page(wanted, now())
    if found is None:
        raise NotFound(f"{wanted} has no rule")
    query = query_of(app.current_event)
    notice = "Saved." if query.get("saved") else ""
    return page(
        "number.html",
        visitor,
        number=wanted,
        p=found,
        notice=notice,
        warnings=_warnings(),
        notified=_notify_lines(),
        section="numbers",
    )


WARNINGS = {
    "audit": "The change was saved, but its audit event could not be written (the console's log says why).",
    "fallback": (
        "The change was saved, but the number's static fallback document (its Voice Fallback URL) could not be "
        "updated: save again, or run `failover-did rules apply` (the console's log says why)."
    ),
    "fallback-unset": (
        "The change was saved, but the number's static fallback document (its Voice Fallback URL) was not "
        "republished: the console has no fallback bucket configured (FALLBACK_BUCKET). Until it is, run "
        "`failover-did rules apply` after changing rules here."
    ),
    "notify": (
        "The change was saved, but the missed-call recipients' subscriptions could not be updated, so a new "
        "recipient gets no missed-call notices yet: save again, or run `failover-did rules apply` "
        "(the console's log says why)."
    ),
    "notify-unset": (
        "The change was saved, but its missed-call recipients were not subscribed: the console has no notify "
        "topic configured (NOTIFY_TOPIC_ARN). Run `failover-did rules apply` to subscribe them."
    ),
}
MAX_NOTIFY_LINES = 10
NOTIFY_WORDS = {
    "subscribed": "Subscribed {endpoint} by {protocol} to missed-call notices.",
    "refiltered": "Updated which numbers' missed-call notices {endpoint} receives by {protocol}.",
    "unsubscribed": "Unsubscribed {endpoint} ({protocol}): no rule names it any more.",
    "pending": (
        "{endpoint} gets no missed-call notices until its owner confirms the subscription SNS sent by {protocol}."
    ),
    "conflict": (
        "{endpoint} ({protocol}) is one of the stack's default alert recipients: it keeps receiving the notices "
        "of every number without its own recipients, and cannot also receive this number's alone."
    ),
}


def _raw_query() -> list[tuple[str, str]]:
    raw = str(app.current_event.raw_event.get("rawQueryString") or "")[:4096]
    return parse_qsl(raw)


def _warnings() -> list[str]:
    codes = [v for k, v in _raw_query() if k == "warn"]
    return [WARNINGS[c] for c in dict.fromkeys(codes) if c in WARNINGS]


def _notify_lines() -> list[str]:
    """What the save did to the missed-call subscriptions, as the redirect carried it (`action:protocol:endpoint`);
    anything else in the query is ignored."""
    lines: list[str] = []
    for key, value in _raw_query():
        action, _, rest = value.partition(":")
        protocol, _, endpoint = rest.partition(":")
        if key == "notify" and action in NOTIFY_WORDS and protocol in ("email", "sms") and 0 < len(endpoint) <= 254:
            lines.append(NOTIFY_WORDS[action].format(endpoint=endpoint, protocol=protocol))
    return list(dict.fromkeys(lines))[:MAX_NOTIFY_LINES]


def _after_save(outcome: number_pages.Saved) -> str:
    """The query that tells the next page what the save could not do, and what it did to the recipients."""
    query = [("warn", code) for code in outcome.warnings]
    query += [
        ("notify", f"{c.action}:{c.protocol}:{c.endpoint}") for c in outcome.recipients.changes[:MAX_NOTIFY_LINES]
    ]
    return "".join(f"&{key}={quote(value, safe='')}" for key, value in query)


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
    visitor = admin_of(app.current_event)
    wanted = number_of(raw)
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
    outcome = number_pages.save(form, number, visitor.user.email, now(), new=new)
    if isinstance(outcome, Judgement):
        return _edit_page(visitor, form, outcome, new=new, status=400)
    logger.info("rule saved", extra={"number": number, "by": visitor.user.email, "version": outcome.version})
    _log_shortfalls(number, outcome)
    return redirect(f"{number_path(number)}?saved=1{_after_save(outcome)}")


def _log_shortfalls(number: str, outcome: number_pages.Saved) -> None:
    for what, error in (("audit event", outcome.audit_error), ("static fallback", outcome.fallback_error)):
        if error:
            logger.error(f"{what} not written", extra={"number": number, "reason": error})


@app.post("/console/numbers/<raw>/edit")
def edit(raw: str) -> Response[str]:
    visitor = admin_of(app.current_event)
    fields = posted(app.current_event, visitor)
    wanted = number_of(raw)
    return _submit(visitor, {**fields, "number": wanted}, wanted, new=False)


@app.get("/console/new")
def new_form() -> Response[str]:
    visitor = admin_of(app.current_event)
    return _edit_page(visitor, forms.blank_form(), None, new=True)


@app.post("/console/new")
def new() -> Response[str]:
    visitor = admin_of(app.current_event)
    fields = posted(app.current_event, visitor)
    typed = fields.get("number", "").strip()
    return _submit(visitor, fields, typed, new=True)


@app.get("/console/numbers/<raw>/delete")
def delete_form(raw: str) -> Response[str]:
    visitor = admin_of(app.current_event)
    wanted = number_of(raw)
    found = number_pages.number_page(wanted, now())
    if found is None:
        raise NotFound(f"{wanted} has no rule")
    return page("confirm_delete.html", visitor, number=wanted, p=found, section="numbers")


@app.post("/console/numbers/<raw>/delete")
def delete(raw: str) -> Response[str]:
    visitor = admin_of(app.current_event)
    fields = posted(app.current_event, visitor)
    wanted = number_of(raw)
    if fields.get("confirm") != "delete":
        return redirect(f"{number_path(wanted)}/delete")
    deleted, outcome = number_pages.delete(wanted, visitor.user.email, now())
    if deleted is None:
        raise NotFound(f"{wanted} has no rule")
    logger.info("rule deleted", extra={"number": wanted, "by": visitor.user.email})
    _log_shortfalls(wanted, outcome)
    return redirect(f"{HOME}?deleted={quote(wanted)}{_after_save(outcome)}")


@app.post("/console/numbers/<raw>/drill")
def drill(raw: str) -> Response[str]:
    visitor = admin_of(app.current_event)
    posted(app.current_event, visitor)
    wanted = number_of(raw)
    url = drill_page.voice_url(settings(), app.current_event.raw_event)
    checks = drill_page.drill(wanted, url)
    passed = all(c.passed for c in checks)
    return page("drill.html", visitor, number=wanted, checks=checks, passed=passed, url=url, section="numbers")


@app.get("/console/alerts")
def alerts() -> Response[str]:
    visitor = reader_of(app.current_event)
    return page("alerts.html", visitor, a=alerts_page.alerts(query_of(app.current_event), now()), section="alerts")


@app.get("/console/missed")
def missed() -> Response[str]:
    visitor = reader_of(app.current_event)
    return page("missed.html", visitor, m=missed_page.missed(query_of(app.current_event), now()), section="missed")


# --- errors: one page each, never a traceback ------------------------------------------------------------


def _message(status: int, title: str, message: str, visitor: Visitor | None = None) -> Response[str]:
    return page("message.html", visitor, status, title=title, message=message)


def _maybe_visitor() -> Visitor | None:
    try:
        return reader_of(app.current_event)
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
    token = renewed.set(())
    try:
        response: dict[str, Any] = app.resolve(event, context)
        fresh = renewed.get()
    finally:
        renewed.reset(token)
    if fresh:
        # a refreshed session keeps its new tokens, unless the answer itself ends the session
        setting = response.setdefault("cookies", [])
        ending = any(c.startswith(f"{session.ID_COOKIE}=") for c in setting)
        if not ending:
            setting.extend(str(cookie) for cookie in fresh)
    headers = response.setdefault("headers", {})
    headers.update(SECURITY_HEADERS)
    headers.setdefault("Cache-Control", "no-store")
    return response
