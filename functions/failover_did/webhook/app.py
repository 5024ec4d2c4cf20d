"""The voice webhook: API Gateway HTTP API -> this Lambda -> TwiML.

Each route reads the Twilio form, looks up the number's rule, asks the routing core for the next
step and renders it. Signatures are checked in one middleware before any route runs.
"""

from __future__ import annotations

import base64
import binascii
import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pynamodb.exceptions import PynamoDBException

from failover_did import fallback, twiml
from failover_did import metric_names as m
from failover_did.alerts.wording import one_line
from failover_did.call_record import CallRecord, TierAttempt
from failover_did.health import transitions
from failover_did.observability import count_by, logger, metrics
from failover_did.routing import (
    ANSWERED_STATUSES,
    DialOutcome,
    DialTier,
    Finish,
    Step,
    Stop,
    answered,
    first_step,
    next_step,
    outcome_class,
    probe_target,
    reason_class,
)
from failover_did.rules.model import Rule
from failover_did.settings import settings
from failover_did.store import breaker, call_log, calls, failovers, static_fallback
from failover_did.store.health_store import HealthReader
from failover_did.store.rules_store import Lookup, RuleReader, StoreUnavailable
from failover_did.twiml import xml_safe
from failover_did.webhook.params import MAX_TRANSCRIPT_CHARS, Refused, check_params
from failover_did.webhook.signature import (
    ROUTE_PREFIX,
    TokenSource,
    TokenUnavailable,
    is_valid,
    public_base,
    signed_url,
)

MAX_BODY_BYTES = 16 * 1024  # Twilio's voice webhooks are well under 4 KiB
MAX_FIELDS = 100
XML = "application/xml"
MAX_CALL_SECONDS = 24 * 3600  # Twilio ends any call after 24 hours
CALL_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

settings()  # read and checked at cold start: a bad setting stops the container here, naming the variable
app = APIGatewayHttpResolver()
rules = RuleReader()
health = HealthReader()
tokens = TokenSource()


class BadRequest(Exception):
    """The request is not a well-formed Twilio webhook."""


class Forbidden(Exception):
    """The request's X-Twilio-Signature does not match."""


def form(event: dict[str, Any]) -> dict[str, str]:
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise BadRequest("body too large")
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise BadRequest("body is not UTF-8 form data") from None
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest("body too large")
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        raise BadRequest("too many form fields") from None


def query_int(name: str, upper: int) -> int:
    raw = parse_qs(app.current_event.raw_event.get("rawQueryString") or "").get(name, [""])[-1]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > upper:
        raise BadRequest(f"query parameter {name} must be a whole number up to {upper}")
    return int(raw)


def has_test_marker(event: dict[str, Any]) -> bool:
    """Whether the URL Twilio requested carries `test=1`: a call made by `failover-did simulate` or
    `drill`. The marker is in the signed URL, so a captured real request cannot gain it."""
    values = parse_qs(event.get("rawQueryString") or "", keep_blank_values=True).get(twiml.TEST_QUERY)
    if values is None:
        return False
    if values != ["1"]:
        raise BadRequest(f"query parameter {twiml.TEST_QUERY} must be 1 when present")
    return True


def route_of(event: dict[str, Any]) -> str:
    path = str(event.get("rawPath") or "")
    at = path.find(ROUTE_PREFIX)
    return path[at:] if at >= 0 else path


def verify_twilio(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    event = app.current_event.raw_event
    params = form(event)
    base = public_base(event)
    headers = app.current_event.headers
    signature = headers.get("x-twilio-signature") or headers.get("X-Twilio-Signature") or ""
    if not is_valid(tokens.get(), signed_url(event, base), params, signature):
        metrics.add_metric(name=m.SIGNATURE_REJECTED, unit=MetricUnit.Count, value=1)
        raise Forbidden()
    try:
        check_params(params, route_of(event))
    except Refused as refused:
        # Signed, yet not what Twilio sends: refused before any route runs, so it changes nothing.
        metrics.add_metric(name=m.MALFORMED_REQUESTS, unit=MetricUnit.Count, value=1)
        logger.warning("signed request refused", extra={"reason": str(refused), "path": event.get("rawPath")})
        raise BadRequest(str(refused)) from None
    app.append_context(params=params, base=base, test=has_test_marker(event))
    return next_middleware(app)


app.use(middlewares=[verify_twilio])


def params() -> dict[str, str]:
    return app.context["params"]  # type: ignore[no-any-return]


def is_test_call() -> bool:
    """A call of `failover-did simulate` or `drill` (Voice URL `?test=1`): nobody real was dialed, so it is
    never evidence about a destination's health nor counted against the monthly budget."""
    return bool(app.context.get("test"))


def called_number() -> str:
    p = params()
    return p.get("To") or p.get("Called") or ""


def number_rule() -> Lookup:
    number = called_number()
    if not number:
        return Lookup(None, stale=False)  # nothing to look up: an unknown number, not a storage failure
    lookup = rules.get(number)
    if lookup.stale:
        metrics.add_metric(name=m.STALE_RULE_SERVED, unit=MetricUnit.Count, value=1)
    return lookup


def tier_health(rule: Rule) -> dict[str, str]:
    """The known state of the rule's judged tiers (cached a few seconds); phone numbers are absent."""
    probed = [probe_target(t) for t in rule.tiers if t.is_judged]
    return health.states(probed) if probed else {}


def reply(document: str) -> Response[str]:
    return Response(status_code=200, content_type=XML, body=document)


def respond(step: Step, rule: Rule | None = None, from_tier: int = 0, started: int | None = None) -> Response[str]:
    p = params()
    # The decision rides in the EMF record's properties: one searchable log line per webhook, and no
    # per-number or per-call metric dimension (each dimension set is a billed custom metric).
    metrics.add_metadata("call_sid", p.get("CallSid", ""))
    metrics.add_metadata("number", called_number())
    if is_test_call():
        metrics.add_metadata("test", True)
    if isinstance(step, DialTier):
        if rule is not None and step.index > 0 and (step.hop > 1 or step.reason != "primary"):
            note_failover(rule, step, from_tier)
        metrics.add_metadata("decision", {"dial": step.tier.target, "tier": step.index, "reason": step.reason})
    elif isinstance(step, Finish):
        metrics.add_metric(name=m.FINAL_REACHED, unit=MetricUnit.Count, value=1)
        metrics.add_metadata("decision", {"final": True, "reason": step.reason})
    elif isinstance(step, Stop):
        if step.reason == "answered":
            metrics.add_metric(name=m.CALLS_ANSWERED, unit=MetricUnit.Count, value=1)
        metrics.add_metadata("decision", {"stop": step.reason})
    document = twiml.render(
        step,
        base=app.context["base"],
        caller=p.get("From", ""),
        called=called_number(),
        test=is_test_call(),
        started=started,
    )
    return reply(document)


def note_failover(rule: Rule, step: DialTier, from_tier: int) -> None:
    """Log the failover once per call and tier, count it against the number's monthly budget. A test call's
    failover is logged, marked as a test, and neither counted nor raised as a metric (no alarm fires)."""
    reason = "down" if step.hop == 1 else step.reason
    call_sid = params().get("CallSid", "")
    test = is_test_call()
    move = failovers.Failover(
        rule.number, call_sid, from_tier, step.index, step.tier.target, reason, from_tier == 0, test=test
    )
    try:
        written, crossed = breaker.dynamodb.call(
            lambda: failovers.record_and_count(move, rule.monthly_failover_budget, datetime.now(UTC))
        )
    except PynamoDBException as error:
        logger.error("failover event not written", extra={"call_sid": move.call_sid, "error": str(error)})
        written, crossed = True, False  # better a repeated metric than a missed alarm
    if written and not test:
        metrics.add_metric(name=m.FAILOVERS, unit=MetricUnit.Count, value=1)
        metrics.add_metadata("failover", {"from_tier": from_tier, "to_tier": step.index, "reason": reason})
        count_by(m.FAILOVERS_BY_REASON, "reason", reason_class(reason))
    if crossed:
        metrics.add_metric(name=m.FAILOVER_BUDGET_EXCEEDED, unit=MetricUnit.Count, value=1)


def this_call() -> call_log.Caller:
    p = params()
    caller = p.get("From") or p.get("Caller") or ""
    return call_log.Caller(p.get("CallSid", ""), called_number(), caller, is_test_call())


def log_call(write: Callable[[], CallRecord | None]) -> None:
    """Write to the call log; when the write closed a missed call, send its notice. Neither a storage
    failure nor a notice failure changes the webhook's answer."""
    try:
        record = write()
    except Exception as error:
        logger.error("call log not written", extra={"call_sid": params().get("CallSid", ""), "error": str(error)})
        return
    if record is not None and record.missed and not record.test:
        notice_missed_call(record)


def notice_missed_call(record: CallRecord) -> None:
    try:
        # Looked up at run time: the notices package is its own module (and its own failure).
        notices = importlib.import_module("failover_did.notices")
        notices.missed_call(record, datetime.now(UTC))
    except Exception:
        logger.exception("missed-call notice not sent", extra={"call_sid": record.call_sid})


@app.post("/voice")
def incoming_call() -> Response[str]:
    metrics.add_metric(name=m.INCOMING_CALLS, unit=MetricUnit.Count, value=1)
    lookup = number_rule()
    now = datetime.now(UTC)
    if lookup.rule is None:
        metrics.add_metric(name=m.UNKNOWN_NUMBER, unit=MetricUnit.Count, value=1)
        log_call(lambda: call_log.call_started(this_call(), now, None, unknown_number=True))
        return reply(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER_SAY))
    # No call-log write here: the caller waits on this answer. The start rides on the Dial action URL
    # and the action's write records it.
    return respond(first_step(lookup.rule, tier_health(lookup.rule)), lookup.rule, started=int(now.timestamp()))


@app.post("/voice/action")
def dial_ended() -> Response[str]:
    index, hop = query_int("tier", 99), query_int("hop", 99)
    rule = number_rule().rule
    if rule is None:  # the rule was deleted mid-call
        return reply(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER_SAY))
    p = params()
    outcome = DialOutcome.from_params(p)
    tier = rule.tiers[index] if index < len(rule.tiers) else None
    if tier is not None and tier.screen and outcome.bridged is None and outcome.status in ("completed", "answered"):
        outcome = DialOutcome.from_params(p, screen_accepted=calls.screen_accepted(p.get("CallSid", ""), index))
    step = next_step(rule, index, hop, outcome, tier_health(rule))
    count_by(m.DIAL_OUTCOMES, "outcome", outcome_class(tier, outcome))
    if not is_test_call():  # a test call's leg reached nobody real: no passive health count either way
        transitions.count_live_failure(rule, index, outcome, p.get("CallSid", ""), datetime.now(UTC))
        transitions.count_live_success(rule, index, outcome, p.get("CallSid", ""), datetime.now(UTC))
    started = call_start()
    log_dial(index, hop, tier.target if tier else "", outcome, step, tier is not None and answered(tier, outcome))
    return respond(step, rule, index, started=started)


def call_start() -> int | None:
    """The call's start (Unix seconds) from the signed action URL; None when absent or implausible."""
    raw = parse_qs(app.current_event.raw_event.get("rawQueryString") or "").get(twiml.START_QUERY, [""])[-1]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 11):
        return None
    started = int(raw)
    now = datetime.now(UTC).timestamp()
    return started if now - MAX_CALL_SECONDS <= started <= now + 60 else None


def log_dial(index: int, hop: int, target: str, outcome: DialOutcome, step: Step, took_it: bool) -> None:
    """The call log's record of this dial (answered even when the caller hung up after talking) and of
    what the call does next."""
    status = outcome.status or "unknown"
    if outcome.status in ANSWERED_STATUSES and not took_it:
        status = "not-accepted"  # a screened callee (or a voicemail) answered but nobody pressed 1
    attempt = TierAttempt(hop=hop, tier=index, target=target, outcome=status, sip_code=outcome.sip_code)
    following = None
    if isinstance(step, DialTier):
        following = TierAttempt(hop=step.hop, tier=step.index, target=step.tier.target)
    voicemail = step.final.voicemail if isinstance(step, Finish) else None
    now = datetime.now(UTC)
    start = call_start()
    started = datetime.fromtimestamp(start, UTC) if start is not None else None
    log_call(
        lambda: call_log.dial_ended(
            this_call(),
            now,
            attempt,
            started=started,
            next_attempt=following,
            answered_by=target if took_it else None,
            final_voicemail=voicemail,
        )
    )


@app.post("/voice/screen")
def screen_callee() -> Response[str]:
    return reply(twiml.screen_prompt(app.context["base"], query_int("tier", 99), test=is_test_call()))


@app.post("/voice/screen/accept")
def screen_answer() -> Response[str]:
    tier = query_int("tier", 99)
    p = params()
    if p.get("Digits") != "1":
        return reply(twiml.say_and_hang_up("Call declined."))
    parent = p.get("ParentCallSid") or p.get("CallSid", "")
    try:
        calls.record_screen_accept(parent, tier)
    except PynamoDBException as error:  # still bridge: Twilio's DialBridged tells the caller's side
        logger.error("screen acceptance not stored", extra={"call_sid": parent, "error": str(error)})
    return reply(twiml.empty())  # the url's TwiML ends: Twilio bridges the callee to the caller


def seconds(name: str) -> int | None:
    raw = params().get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


@app.post("/voice/voicemail")
def voicemail_done() -> Response[str]:
    url = params().get("RecordingUrl") or None
    now = datetime.now(UTC)
    log_call(lambda: call_log.voicemail_recorded(this_call(), now, url, seconds("RecordingDuration")))
    return reply(twiml.say_and_hang_up("Thank you. Goodbye."))


@app.post("/voice/recording")
def recording_status() -> Response[str]:
    """Twilio's recordingStatusCallback: the voicemail is stored (or there is none)."""
    p = params()
    status = p.get("RecordingStatus", "")
    if not status:
        raise BadRequest("RecordingStatus is missing")
    now = datetime.now(UTC)
    log_call(
        lambda: call_log.recording_ready(
            this_call(), now, status, p.get("RecordingUrl") or None, seconds("RecordingDuration")
        )
    )
    return reply(twiml.empty())


@app.post("/voice/transcription")
def transcription_ready() -> Response[str]:
    """Twilio's transcribeCallback: the voicemail's text. Stored once; the first store of a real call's
    text sends it on (a follow-up, or into the pending digest)."""
    p = params()
    status = p.get("TranscriptionStatus", "")
    if not status:
        raise BadRequest("TranscriptionStatus is missing")
    text = one_line(xml_safe(p.get("TranscriptionText", "")), MAX_TRANSCRIPT_CHARS) or None
    now = datetime.now(UTC)
    try:
        record = call_log.transcription_ready(this_call(), now, status, text)
    except Exception as error:
        logger.error("transcript not stored", extra={"call_sid": p.get("CallSid", ""), "error": str(error)})
        return reply(twiml.empty())
    if record is not None and not record.test:
        try:
            notices = importlib.import_module("failover_did.notices")
            notices.voicemail_transcribed(record, now)
        except Exception:
            logger.exception("voicemail transcript not sent", extra={"call_sid": record.call_sid})
    return reply(twiml.empty())


@app.post("/voice/status")
def call_status() -> Response[str]:
    """The number's call-status callback: the call is over, so its outcome is decided (once)."""
    p = params()
    status = p.get("CallStatus", "")
    if not status:
        raise BadRequest("CallStatus is missing")
    if status not in CALL_ENDED:
        return reply(twiml.empty())  # a progress event (if the number asks for them): the call goes on
    now = datetime.now(UTC)
    log_call(lambda: call_log.call_ended(this_call(), now, status, seconds("CallDuration")))
    return reply(twiml.empty())


@app.exception_handler(BadRequest)
def bad_request(error: BadRequest) -> Response[str]:
    return Response(status_code=400, content_type="text/plain", body=f"bad request: {error}")


@app.exception_handler(Forbidden)
def forbidden(_: Forbidden) -> Response[str]:
    return Response(status_code=403, content_type="text/plain", body="invalid Twilio signature")


@app.exception_handler(TokenUnavailable)
def no_token(error: TokenUnavailable) -> Response[str]:
    logger.error("cannot verify Twilio signatures", extra={"reason": str(error)})
    return Response(status_code=403, content_type="text/plain", body="signature cannot be verified")


@app.exception_handler(StoreUnavailable)
def store_down(error: StoreUnavailable) -> Response[str]:
    """DynamoDB failed and this container has no copy of the rule: serve the number's static cascade from
    S3 (mid-call, only the tiers not tried yet); if that fails too, in any way, an apology."""
    metrics.add_metric(name=m.STORE_UNAVAILABLE, unit=MetricUnit.Count, value=1)
    logger.error("rules unavailable and none cached", extra={"reason": str(error)})
    try:
        return reply(static_answer())
    except Exception as failure:  # the last resort must not fail: anything here ends in the apology
        logger.error("static fallback not served", extra={"reason": f"{type(failure).__name__}: {failure}"})
        return reply(twiml.say_and_hang_up(twiml.STORE_DOWN_SAY))


def static_answer() -> str:
    p = app.context.get("params") or {}
    outcome = DialOutcome.from_params(p)
    on_action = app.current_event.path.endswith("/voice/action")
    if on_action and (outcome.caller_gone or outcome.status in ("canceled", *ANSWERED_STATUSES)):
        return twiml.render(Stop("answered or hung up"), base="", caller="", called="")
    document = static_fallback.static_cascade_of(p.get("To") or p.get("Called") or "")
    if document is not None and on_action:
        document = fallback.after_tier(document, query_int("tier", 99))
    servable = fallback.servable(document) if document is not None else None
    if document is not None and servable is None:
        logger.error("static fallback is not a TwiML document", extra={"number": p.get("To") or p.get("Called")})
    return servable or twiml.say_and_hang_up(twiml.STORE_DOWN_SAY)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return Response(status_code=404, content_type="text/plain", body="not found")


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[str]:
    logger.error("unexpected error", exc_info=error)
    return reply(twiml.say_and_hang_up(twiml.STORE_DOWN_SAY))


@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
