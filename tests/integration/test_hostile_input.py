"""Hostile input through the real Lambda handler (DynamoDB in moto): property-based tests that throw
arbitrary bodies, headers, queries and encodings at the webhook, signed Twilio requests with arbitrary
parameters, and example-based signature edge cases.

What holds for every request: the status is one of 200/400/403/404/413 (never a 5xx, never an exception
escaping the handler, which API Gateway would turn into a 500); the body never shows a traceback or a
Python exception name; a 200 is a TwiML document whose root is <Response>, with at most one <Dial>, and
every number or SIP URI it dials is a target of the rule of the called number — never one taken from the
request, never one of another number. An exception that the catch-all handler turns into an apology is a
crash too: each one seen is checked against the list of known bugs, each pinned by an xfail test below.

Examples tried per run (hypothesis `max_examples`): HOSTILE_EXAMPLES + SIGNED_EXAMPLES = EXAMPLES_TOTAL, plus
the example-based cases below.
"""

from __future__ import annotations

import base64
import builtins
import re
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pynamodb.exceptions import PutError
from twilio.request_validator import RequestValidator

from failover_did import twiml
from failover_did.observability import logger
from failover_did.rules.model import Rule
from failover_did.rules.validate import parse_rules_yaml
from failover_did.settings import settings as app_settings
from failover_did.store.tables import HealthShard
from failover_did.webhook import app as webhook_app
from failover_did.webhook.signature import public_base, signed_url
from failover_did_cli.apigw import LambdaContext, http_event
from failover_did_cli.callsim import parse_reply
from tests.support import HOST, RULES_YAML, TOKEN, Webhook, call_params

# --- budgets: examples per property (the README quotes the total) ---------------------------------
HOSTILE_EXAMPLES = 1200
SIGNED_EXAMPLES = 1200
EXAMPLES_TOTAL = HOSTILE_EXAMPLES + SIGNED_EXAMPLES

PROPERTY = settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ALLOWED_STATUSES = frozenset({200, 400, 403, 404, 413})
SIGNED_STATUSES = frozenset({200, 400})
RULES: dict[str, Rule] = parse_rules_yaml(RULES_YAML)
TARGETS_BY_NUMBER: dict[str, frozenset[str]] = {
    number: frozenset(tier.target for tier in rule.tiers) for number, rule in RULES.items()
}
ROUTES = ("/voice", "/voice/action", "/voice/screen", "/voice/screen/accept", "/voice/voicemail")
TIER_ROUTES = {"/voice/action": ("tier", "hop"), "/voice/screen": ("tier",), "/voice/screen/accept": ("tier",)}
TWILIO_FIELDS = (
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "Called",
    "Caller",
    "CallStatus",
    "Direction",
    "ApiVersion",
    "DialCallStatus",
    "DialCallSid",
    "DialSipResponseCode",
    "DialBridged",
    "DialCallDuration",
    "Digits",
    "ParentCallSid",
    "RecordingUrl",
)
EXCEPTION_NAMES = sorted(
    {name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)}
    | {
        "ClientError",
        "BotoCoreError",
        "PynamoDBException",
        "GetError",
        "PutError",
        "DoesNotExist",
        "ValidationException",
        "StoreUnavailable",
        "ConcurrentEdit",
        "TokenUnavailable",
        "ParseError",
    }
)
EXCEPTION_NAME = re.compile(r"\b(?:" + "|".join(map(re.escape, EXCEPTION_NAMES)) + r")\b")

# Crashes (exceptions the catch-all handler turned into an apology) that are known product bugs, each
# reproduced by an xfail(strict=True) test below: (function in failover_did that raised, exception type).
KNOWN_CRASHES: frozenset[tuple[str, str]] = frozenset()  # all found so far are fixed; their tests stay below


# --- the handler, watched --------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    body: str
    crashes: list[tuple[str, str, str]] = field(default_factory=list)  # (where, type, message)

    @property
    def unknown_crashes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.crashes if (c[0], c[1]) not in KNOWN_CRASHES]


def raised_in(error: BaseException) -> str:
    """The innermost function of our own code (failover_did) on the exception's traceback."""
    ours = [f for f in traceback.extract_tb(error.__traceback__) if "/failover_did/" in f.filename.replace("\\", "/")]
    return ours[-1].name if ours else "?"


class Watched:
    """Invokes the real handler and records every exception the catch-all handler swallowed."""

    def __init__(self) -> None:
        self._crashes: list[tuple[str, str, str]] = []
        self._real_error = logger.error

    def _spy(self, msg: object, *args: Any, **kwargs: Any) -> Any:
        error = kwargs.get("exc_info")
        if msg == "unexpected error" and isinstance(error, BaseException):
            self._crashes.append((raised_in(error), type(error).__name__, str(error)[:200]))
        return self._real_error(msg, *args, **kwargs)

    def invoke(self, event: dict[str, Any]) -> Outcome:
        self._crashes = []
        try:
            raw = webhook_app.handler(event, LambdaContext())
        except Exception as error:  # escaping the handler = a Lambda error = API Gateway's 500
            raise AssertionError(f"the handler raised {error!r} (API Gateway would answer 500)") from error
        return Outcome(int(raw["statusCode"]), str(raw.get("body") or ""), list(self._crashes))

    def post(self, hook: Webhook, path: str, params: dict[str, str], query: str = "", **kwargs: Any) -> Outcome:
        self._crashes = []
        result = hook.post(path, params, query, **kwargs)
        return Outcome(result.status, result.body, list(self._crashes))


@pytest.fixture
def watched(rules: Any) -> Iterator[Watched]:
    """The handler with moto's DynamoDB holding RULES_YAML (the `rules` fixture wraps every example)."""
    watcher = Watched()
    app_settings.cache_clear()
    with mock.patch.object(logger, "error", watcher._spy):
        yield watcher
    app_settings.cache_clear()


def effective_number(params: dict[str, str]) -> str:
    """The number whose rule the webhook reads: To, or Called when To is empty (as app.number_rule)."""
    return params.get("To") or params.get("Called") or ""


# A 400 names the refused value, quoted as Python quotes it: what the sender sent, not our own words.
QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def own_words(outcome: Outcome) -> str:
    return QUOTED.sub("<value>", outcome.body) if outcome.status == 400 else outcome.body


def assert_safe(outcome: Outcome, allowed_targets: frozenset[str], statuses: frozenset[int]) -> None:
    """The properties every response keeps, whatever the request."""
    assert outcome.status in statuses, (outcome.status, outcome.body[:300])
    assert "Traceback" not in own_words(outcome), outcome.body[:500]
    named = EXCEPTION_NAME.search(own_words(outcome))
    assert named is None, f"exception name {named.group(0)!r} in the body: {outcome.body[:300]}"
    assert not outcome.unknown_crashes, f"unexpected exception swallowed into an apology: {outcome.unknown_crashes}"
    if outcome.status != 200:
        return
    root = ET.fromstring(outcome.body)
    assert root.tag == "Response", outcome.body
    dials = root.findall("Dial")
    assert len(dials) <= 1, outcome.body
    assert not root.findall(".//Dial//Dial"), outcome.body
    dialed = [(noun.text or "").strip() for dial in dials for noun in dial if noun.tag in ("Number", "Sip")]
    stray = [target for target in dialed if target not in allowed_targets]
    assert not stray, f"dialed {stray}, not targets of the called number's rule: {outcome.body}"


# --- strategies ------------------------------------------------------------------------------------

UTF8_TEXT = st.characters(codec="utf-8")  # every code point but lone surrogates
SPECIALS = (
    "",
    " ",
    "%",
    "%%",
    "%zz",
    "%ff",
    "%C3%28",
    "%00",
    "%E2%9C",
    "+",
    "&",
    "=",
    "&&==;",
    "\x00",
    "\r\n",
    "🙂",
    "\u202e",
    "<Dial>sip:evil@attacker.example</Dial>",
    "]]>&<'\"",
    "sip:evil@attacker.example",
    "+19005550199",
    "+14155550111",
    "+14155550100",
    "+14155550200",
    "9" * 300,
    "²",
    "\u0661",
    "Traceback",
)


def words(max_size: int = 30) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SPECIALS), st.text(UTF8_TEXT, max_size=max_size))


def percent_garbage() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("%&=+;abcXYZ019fF\u00e9\U0001f642 "), max_size=60)


@st.composite
def form_body(draw: st.DrawFn) -> bytes:
    """A form body: well-encoded pairs (duplicate keys likely), raw unencoded text, % garbage, bytes that
    are not UTF-8, a body just under/over the size limit, or too many fields."""
    kind = draw(st.sampled_from(["call", "call", "pairs", "raw", "percent", "binary", "huge", "fields", "empty"]))
    if kind == "call":  # a Twilio-shaped form with a few fields replaced or added
        params = call_params(to=draw(st.sampled_from([*RULES, "+19005550199", ""])))
        for name, value in draw(st.lists(st.tuples(st.sampled_from(TWILIO_FIELDS), words()), max_size=4)):
            params[name] = value
        return urlencode(params).encode()
    if kind == "pairs":
        keys = st.one_of(st.sampled_from(TWILIO_FIELDS), words(12))
        pairs = draw(st.lists(st.tuples(keys, words()), max_size=14))
        return urlencode(pairs).encode()
    if kind == "raw":
        pairs = draw(st.lists(st.tuples(st.sampled_from(TWILIO_FIELDS), words()), max_size=8))
        return "&".join(f"{k}={v}" for k, v in pairs).encode()
    if kind == "percent":
        return draw(percent_garbage()).encode()
    if kind == "binary":
        return draw(st.binary(max_size=400))
    if kind == "huge":
        size = draw(st.sampled_from([16 * 1024 - 2, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 21_850, 100_000, 1 << 20]))
        return b"To=" + draw(st.sampled_from([b"x", b"\xe2\x9c\x93", b"%", b"\xff"])) * size
    if kind == "fields":
        count = draw(st.integers(min_value=95, max_value=160))
        return "&".join(f"k{i}=v" for i in range(count)).encode()
    return b""


@dataclass
class Hostile:
    event: dict[str, Any]
    signature_mode: str

    def __repr__(self) -> str:  # hypothesis prints it on failure: keep it short
        body = str(self.event.get("body"))
        return (
            f"Hostile(path={self.event['rawPath']!r}, query={self.event['rawQueryString'][:80]!r}, "
            f"b64={self.event.get('isBase64Encoded')}, signature={self.signature_mode}, "
            f"headers={ {k: v[:60] for k, v in self.event['headers'].items()} }, body={body[:200]!r}"
            f"{'…' if len(body) > 200 else ''} ({len(body)} chars))"
        )


def handler_view(event: dict[str, Any]) -> dict[str, str] | None:
    """The form the handler will read from the event, or None where it answers 400 first."""
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
        text = raw.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=webhook_app.MAX_FIELDS))
    except ValueError:
        return None


@st.composite
def hostile_events(draw: st.DrawFn) -> Hostile:
    path = draw(
        st.one_of(
            st.sampled_from(ROUTES),
            st.sampled_from(ROUTES),
            st.sampled_from(
                [*ROUTES, "/", "", "/voice/", "/VOICE", "/prod/voice", "/voice/action/x", "//voice", "/v/voice/screen"]
            ),
            st.text(UTF8_TEXT, max_size=20).map(lambda s: "/" + s),
        )
    )
    method = draw(st.sampled_from(["POST"] * 7 + ["GET", "PUT", "OPTIONS", "HEAD"]))
    query = draw(
        st.one_of(
            st.just(""),
            st.sampled_from(["tier=0&hop=1", "tier=2&hop=3", "tier=1", "tier=99&hop=99", "tier=%31&hop=%32"]),
            st.lists(
                st.tuples(st.sampled_from(["tier", "hop", "x", ""]), st.one_of(words(6), st.integers().map(str))),
                max_size=5,
            ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
            percent_garbage(),
            st.text(UTF8_TEXT, max_size=40),
        )
    )
    body = draw(form_body())
    headers: dict[str, str] = {"content-type": "application/x-www-form-urlencoded", "user-agent": "TwilioProxy/1.1"}
    host_kind = draw(st.sampled_from(["normal", "normal", "normal", "missing", "port", "garbage"]))
    if host_kind != "missing":
        headers["host"] = {
            "normal": HOST,
            "port": HOST + ":443",
            "garbage": draw(st.one_of(words(20), st.sampled_from(["[", "h:abc", "h:99999", "[::1", "a b", "h/x"]))),
        }[host_kind]
    proto = draw(st.sampled_from(["https", "https", "http", None, "garbage"]))
    if proto == "garbage":
        headers["x-forwarded-proto"] = draw(words(10))
    elif proto is not None:
        headers["x-forwarded-proto"] = proto
    for name, value in draw(
        st.dictionaries(st.text(st.sampled_from("abcxyz-_"), min_size=1, max_size=8), words())
    ).items():
        headers.setdefault(name.lower(), value)
    event = http_event(method, path, query=query, headers=headers, body=body, stage="$default")
    event["headers"] = headers  # http_event lower-cases names already; keep our exact values
    encoding = draw(st.sampled_from(["as-is", "as-is", "base64", "bad-base64", "missing", "none", "surrogates"]))
    if encoding == "base64":
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    elif encoding == "bad-base64":
        event["body"] = draw(st.one_of(st.sampled_from(["=", "a", "abc", "!!!!", "YQ", "YQ=", "Y Q=="]), words()))
        event["isBase64Encoded"] = True
    elif encoding == "missing":
        event.pop("body", None)
        event["isBase64Encoded"] = False
    elif encoding == "none":
        event["body"], event["isBase64Encoded"] = None, False
    elif encoding == "surrogates":  # what a JSON event with "\udcff" escapes decodes to
        event["body"], event["isBase64Encoded"] = "To=%2B1415&From=\udcff\udc80", False
    mode = draw(st.sampled_from(["missing", "empty", "garbage", "duplicate", "valid", "valid", "other-url"]))
    params = handler_view(event)
    validator = RequestValidator(TOKEN)
    url = signed_url(event, public_base(event))
    good = validator.compute_signature(url, params or {})
    signature = {
        "missing": None,
        "empty": "",
        "garbage": draw(st.one_of(words(40), st.sampled_from(["AAAA", good[:-1], good.lower(), good + "="]))),
        "duplicate": f"{good},{good}",
        "valid": good,
        "other-url": validator.compute_signature(url + "x", params or {}),
    }[mode]
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return Hostile(event, mode)


# --- 1. anything at all ----------------------------------------------------------------------------


@PROPERTY
@given(request=hostile_events())
def test_any_request_gets_a_clean_answer(watched: Watched, request: Hostile) -> None:
    """Whatever arrives: 200/400/403/404/413, no traceback or exception name, TwiML on 200 that dials only
    targets of the called number's rule; unsigned or forged requests never reach a route."""
    outcome = watched.invoke(request.event)
    params = handler_view(request.event) or {}
    allowed = TARGETS_BY_NUMBER.get(effective_number(params), frozenset())
    event(f"status {outcome.status}, signature {request.signature_mode}")
    assert_safe(outcome, allowed, ALLOWED_STATUSES)
    if request.signature_mode in ("missing", "empty", "garbage", "other-url") and outcome.status == 200:
        # a forged request is refused before any route runs; only a known crash may answer otherwise
        assert outcome.crashes and "cannot connect" in outcome.body, (request, outcome)


# --- 2. correctly signed, arbitrary Twilio parameters -----------------------------------------------

STATUSES = st.sampled_from(
    ["completed", "answered", "busy", "no-answer", "failed", "canceled", "in-progress", "ringing", "", "COMPLETED"]
)
KNOWN = st.sampled_from(sorted(RULES))
NUMBERS = st.sampled_from([*RULES, "+14155550111", "+19005550199", "", "sip:oncall@dr.example.net", "anonymous"])
SIP_CODES = st.sampled_from(["", "180", "200", "302", "404", "486", "487", "500", "503", "603", "99", "1000", "-50"])
BRIDGED = st.sampled_from(["", "true", "false", "TRUE", "True", "yes", "1"])
SMALL_INTS = st.sampled_from(["0", "1", "2", "3", "9", "10", "11", "12", "99", "100", "-1", "01", "1.0", "+1", " 1"])
VALID_INTS = st.sampled_from(["0", "1", "2", "3"])
QUERY_VALUES = st.one_of(
    VALID_INTS, VALID_INTS, SMALL_INTS, st.sampled_from(["", "\u0661", "\u0663", "x", "0x1", "1e1"]), words(6)
)


def query_of(draw: st.DrawFn, path: str) -> str:
    names = TIER_ROUTES.get(path, ())
    if draw(st.integers(0, 9)) < 6:  # mostly what Twilio sends: our own action URL's query
        return "&".join(f"{name}={draw(st.integers(0, 3))}" for name in names)
    pairs: list[tuple[str, str]] = []
    for name in names:
        if draw(st.integers(0, 9)) > 0:  # usually present
            pairs.append((name, draw(QUERY_VALUES)))
        if draw(st.integers(0, 9)) == 0:  # sometimes repeated
            pairs.append((name, draw(QUERY_VALUES)))
    if draw(st.booleans()):
        pairs.append((draw(st.sampled_from(["x", "To", "target", "tier", "hop"])), draw(words(8))))
    quoted = draw(st.booleans())
    return urlencode(pairs) if quoted else "&".join(f"{k}={v}" for k, v in pairs if "&" not in v + k)


@st.composite
def signed_twilio_requests(draw: st.DrawFn) -> tuple[str, str, str, dict[str, str]]:
    path = draw(st.sampled_from([*ROUTES, "/voice", "/voice/action", "/voice/action", "/voice/action"]))
    stage = draw(st.sampled_from(["", "", "/prod"]))
    params = call_params(
        sid=draw(st.one_of(st.just("CA" + "1" * 32), st.just("CA" + "1" * 32), st.just(""), words(40))),
        to=draw(st.one_of(KNOWN, KNOWN, NUMBERS, words(20))),
    )
    params["Called"] = draw(st.one_of(st.just(params["To"]), st.just(params["To"]), NUMBERS))
    params["From"] = draw(st.one_of(NUMBERS, NUMBERS, words(20)))
    params["CallStatus"] = draw(st.one_of(STATUSES, words(10)))
    optional: dict[str, st.SearchStrategy[str]] = {
        "DialCallStatus": st.one_of(STATUSES, STATUSES, words(12)),
        "DialSipResponseCode": st.one_of(SIP_CODES, SIP_CODES, words(4)),
        "DialBridged": st.one_of(BRIDGED, BRIDGED, words(6)),
        "Digits": st.one_of(st.sampled_from(["1", "2", "", "11", "#", "hangup"]), words(3)),
        "ParentCallSid": st.one_of(st.just("CA" + "2" * 32), words(40)),
        "DialCallSid": st.one_of(st.just("CA" + "3" * 32), words(40)),
        "RecordingUrl": st.one_of(st.just("https://api.twilio.com/2010-04-01/Recordings/RE1"), words(60)),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            params[name] = draw(strategy)
    dropped = st.lists(st.sampled_from(["To", "Called", "From", "CallSid", "CallStatus"]), min_size=1, max_size=2)
    for name in draw(st.one_of(st.just([]), st.just([]), st.just([]), dropped)):
        params.pop(name, None)
    for name, value in draw(st.dictionaries(words(10), words(), max_size=3)).items():
        params.setdefault(name, value)
    return path, stage, query_of(draw, path), params


# The documented forms of the Twilio parameters the webhook reads (the brief's table, restated here as
# the test's own oracle rather than imported from the module under test).
CA_SID = re.compile(r"CA[0-9a-f]{32}")
DOCUMENTED: dict[str, Any] = {
    "CallSid": CA_SID.fullmatch,
    "ParentCallSid": CA_SID.fullmatch,
    "DialCallSid": CA_SID.fullmatch,
    "AccountSid": re.compile(r"AC[0-9a-f]{32}").fullmatch,
    "CallStatus": {
        "queued",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }.__contains__,
    "DialCallStatus": {"completed", "answered", "busy", "no-answer", "failed", "canceled"}.__contains__,
    "DialSipResponseCode": lambda v: v.isascii() and v.isdigit() and len(v) == 3 and 100 <= int(v) <= 699,
    "DialBridged": {"true", "false"}.__contains__,
    "Digits": lambda v: v == "hangup" or re.fullmatch(r"[0-9*#]{0,32}", v),
    "DialCallDuration": re.compile(r"[0-9]{1,7}").fullmatch,
    "CallDuration": re.compile(r"[0-9]{1,7}").fullmatch,
    "RecordingDuration": lambda v: v == "-1" or re.fullmatch(r"[0-9]{1,7}", v),
    "RecordingSid": re.compile(r"RE[0-9a-f]{32}").fullmatch,
    "RecordingStatus": {"in-progress", "completed", "absent", "failed"}.__contains__,
    "To": re.compile(r"\+[0-9]{1,15}").fullmatch,
    "Called": re.compile(r"\+[0-9]{1,15}").fullmatch,
    "From": lambda v: 0 < len(v) <= 128 and v.isprintable(),
    "Caller": lambda v: 0 < len(v) <= 128 and v.isprintable(),
    "RecordingUrl": lambda v: (
        v.startswith("https://api.twilio.com/") and v.isascii() and v.isprintable() and " " not in v
    ),
}


def params_are_valid(path: str, params: dict[str, str]) -> bool:
    """Whether a signed request's parameters are all in their documented form (and none folded away)."""
    if not params.get("CallSid") or (path == "/voice" and not (params.get("To") or params.get("Called"))):
        return False
    for name, ok in DOCUMENTED.items():
        value = params.get(name)
        if value is None:
            continue
        if path.startswith("/voice/screen") and name in ("To", "Called") and value.startswith("sip:"):
            continue
        if not ok(value):
            return False
    absent = [name for name in DOCUMENTED if name not in params]
    return not any(name > key and name in value for key, value in params.items() for name in absent)


def query_is_valid(path: str, query: str) -> bool:
    """What the webhook accepts for tier/hop: the last value, a whole number up to 99."""
    parsed = parse_qs(query)
    for name in TIER_ROUTES.get(path, ()):
        raw = parsed.get(name, [""])[-1]
        if not (raw.isascii() and raw.isdecimal() and int(raw) <= 99):  # ASCII digits only, as Twilio sends
            return False
    return True


@settings(PROPERTY, max_examples=SIGNED_EXAMPLES)
@given(request=signed_twilio_requests())
def test_signed_requests_dial_only_the_called_numbers_targets(
    watched: Watched, request: tuple[str, str, str, dict[str, str]]
) -> None:
    """A correctly signed request with any parameters: 200, or 400 exactly when tier/hop is malformed or a
    parameter is not in its documented form; at most one Dial, and only targets of the rule of the number
    called (To, else Called)."""
    path, stage, query, params = request
    outcome = watched.post(Webhook(stage_prefix=stage), path, params, query)
    number = effective_number(params)
    verbs = "/".join(v.tag for v in ET.fromstring(outcome.body)) if outcome.status == 200 else "-"
    event(f"{path} status {outcome.status} {verbs}{' (known crash)' if outcome.crashes else ''}")
    assert_safe(outcome, TARGETS_BY_NUMBER.get(number, frozenset()), SIGNED_STATUSES)
    if outcome.crashes:  # a known crash (assert_safe refused any other) answers the apology instead
        return
    valid = params_are_valid(path, params) and query_is_valid(path, query)
    assert (outcome.status == 400) == (not valid), (outcome.status, outcome.body, query, params)
    reply = parse_reply(outcome.status, outcome.body)
    if outcome.status == 200 and path == "/voice" and number in RULES:
        # the primary, or a later tier when passive health checks have marked earlier ones down
        assert reply.dial is not None and len(reply.dial.targets) == 1, outcome.body
    if outcome.status == 200 and path == "/voice" and number not in RULES:
        assert reply.dial is None and reply.hangs_up, outcome.body


# --- 3. signature edge cases -----------------------------------------------------------------------


def dialed(outcome: Outcome) -> tuple[str, ...]:
    reply = parse_reply(outcome.status, outcome.body)
    assert reply.dial is not None, (outcome.status, outcome.body)
    return reply.dial.targets


def action_of(outcome: Outcome) -> str:
    reply = parse_reply(outcome.status, outcome.body)
    assert reply.dial is not None, (outcome.status, outcome.body)
    return reply.dial.action


def test_twilio_signing_an_explicit_443_is_accepted(watched: Watched) -> None:
    hook = Webhook()
    signed_with_port = watched.post(hook, "/voice", call_params(), signed_url=f"https://{HOST}:443/voice")
    assert signed_with_port.status == 200 and dialed(signed_with_port) == ("sip:frontdesk@pbx.example.com",)
    action = watched.post(
        hook,
        "/voice/action",
        call_params(DialCallStatus="busy"),
        "tier=0&hop=1",
        signed_url=f"https://{HOST}:443/voice/action?tier=0&hop=1",
    )
    assert action.status == 200 and dialed(action) == ("+14155550111",)


def test_request_host_with_443_and_a_signature_without_it_is_accepted(watched: Watched) -> None:
    hook = Webhook(host=f"{HOST}:443")
    outcome = watched.post(hook, "/voice", call_params(), signed_url=f"https://{HOST}/voice")
    assert outcome.status == 200 and dialed(outcome) == ("sip:frontdesk@pbx.example.com",)


@pytest.mark.parametrize("signed", [f"https://{HOST}:8443/voice", f"http://{HOST}/voice", f"https://{HOST}:80/voice"])
def test_a_signature_over_another_port_or_scheme_is_refused(watched: Watched, signed: str) -> None:
    assert watched.post(Webhook(), "/voice", call_params(), signed_url=signed).status == 403


@pytest.mark.parametrize(
    "query",
    [
        "tier=0&hop=1&note=a%20b%2Bc%26d%3D",
        "tier=0&hop=1&x=%E2%9C%93%F0%9F%99%82",
        "tier=%30&hop=%31",
        "hop=1&tier=0&empty=&plus=a+b",
    ],
)
def test_percent_encoded_query_signed_as_sent_is_accepted(watched: Watched, query: str) -> None:
    outcome = watched.post(Webhook(), "/voice/action", call_params(DialCallStatus="busy"), query)
    assert outcome.status == 200 and dialed(outcome) == ("+14155550111",)


def test_percent_encoding_changed_in_transit_is_refused(watched: Watched) -> None:
    """Twilio signs the URL byte for byte: %2b is not %2B, and + is not %20."""
    signed = Webhook().url("/voice/action", "tier=0&hop=1&x=%2B1")
    for sent in ("tier=0&hop=1&x=%2b1", "tier=0&hop=1&x=+1"):
        outcome = watched.post(Webhook(), "/voice/action", call_params(DialCallStatus="busy"), sent, signed_url=signed)
        assert outcome.status == 403, sent


def test_custom_domain_with_public_base_url_and_a_stage(watched: Watched, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://calls.example.com/api/")
    app_settings.cache_clear()
    staged = Webhook(stage_prefix="/prod")
    first = watched.post(staged, "/voice", call_params(), signed_url="https://calls.example.com/api/voice")
    assert first.status == 200
    assert action_of(first).startswith("https://calls.example.com/api/voice/action?tier=0&hop=1&start=")
    then = watched.post(
        staged,
        "/voice/action",
        call_params(DialCallStatus="failed", DialSipResponseCode="503"),
        "tier=0&hop=1",
        signed_url="https://calls.example.com/api/voice/action?tier=0&hop=1",
    )
    assert then.status == 200 and dialed(then) == ("+14155550111",)
    assert action_of(then) == "https://calls.example.com/api/voice/action?tier=1&hop=2"
    # what API Gateway's own URL would be signed with no longer matches once the public URL is set
    assert watched.post(staged, "/voice", call_params()).status == 403
    assert watched.post(staged, "/voice", call_params(), signed_url="https://calls.example.com/voice").status == 403


BUSY = call_params(DialCallStatus="busy")
SIGNED_PATH, SIGNED_QUERY = "/voice/action", "tier=0&hop=1"


def replay(path: str, query: str, params: dict[str, str] | None = None, body: bytes | None = None) -> dict[str, Any]:
    return {"path": path, "query": query, "params": params or BUSY, "body": body}


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("altered", replay(SIGNED_PATH, SIGNED_QUERY, {**BUSY, "DialCallStatus": "no-answer"})),
        ("altered To", replay(SIGNED_PATH, SIGNED_QUERY, {**BUSY, "To": "+14155550200"})),
        ("added", replay(SIGNED_PATH, SIGNED_QUERY, {**BUSY, "DialSipResponseCode": "503"})),
        ("added empty", replay(SIGNED_PATH, SIGNED_QUERY, {**BUSY, "Extra": ""})),
        ("removed", replay(SIGNED_PATH, SIGNED_QUERY, {k: v for k, v in BUSY.items() if k != "Called"})),
        ("duplicate key", replay(SIGNED_PATH, SIGNED_QUERY, body=(urlencode(BUSY) + "&To=%2B14155550200").encode())),
        ("other path", replay("/voice", SIGNED_QUERY)),
        ("other path screen", replay("/voice/screen", SIGNED_QUERY)),
        ("other query", replay(SIGNED_PATH, "tier=1&hop=2")),
        ("query reordered", replay(SIGNED_PATH, "hop=1&tier=0")),
        ("query added", replay(SIGNED_PATH, SIGNED_QUERY + "&tier=2")),
        ("query removed", replay(SIGNED_PATH, "tier=0")),
        (
            "param moved to query",
            replay(
                SIGNED_PATH,
                SIGNED_QUERY + "&DialCallStatus=busy",
                {k: v for k, v in BUSY.items() if k != "DialCallStatus"},
            ),
        ),
    ],
)
def test_replayed_signature_with_anything_changed_is_refused(watched: Watched, name: str, sent: dict[str, Any]) -> None:
    hook = Webhook()
    signature = RequestValidator(TOKEN).compute_signature(hook.url(SIGNED_PATH, SIGNED_QUERY), BUSY)
    original = watched.post(hook, SIGNED_PATH, BUSY, SIGNED_QUERY, signature=signature)
    assert original.status == 200 and dialed(original) == ("+14155550111",)
    outcome = watched.post(hook, sent["path"], sent["params"], sent["query"], signature=signature, body=sent["body"])
    assert outcome.status == 403, (name, outcome.status, outcome.body)
    assert not outcome.crashes


def test_the_watcher_sees_a_swallowed_crash(watched: Watched) -> None:
    """The crash detector itself: an exception the catch-all handler answers with an apology is seen."""
    with mock.patch.object(twiml, "render", side_effect=RuntimeError("boom")):
        outcome = watched.post(Webhook(), "/voice", call_params())
    assert outcome.status == 200 and [(c[0], c[1]) for c in outcome.crashes] == [("respond", "RuntimeError")]
    with pytest.raises(AssertionError, match="unexpected exception swallowed"):
        assert_safe(outcome, frozenset(), ALLOWED_STATUSES)


# --- bugs found by the properties above, fixed; each kept as a regression test -----------------------


@pytest.mark.parametrize("query", ["tier=²&hop=1", "tier=0&hop=①", "tier=%C2%B2&hop=1"])
def test_non_ascii_digit_in_tier_or_hop_is_a_400(watched: Watched, query: str) -> None:
    outcome = watched.post(Webhook(), "/voice/action", BUSY, query)
    assert (outcome.status, outcome.crashes) == (400, [])


def test_non_ascii_digit_sip_code_is_refused_naming_it(watched: Watched) -> None:
    params = call_params(DialCallStatus="failed", DialSipResponseCode="²²²")
    outcome = watched.post(Webhook(), "/voice/action", params, "tier=0&hop=1")
    assert not outcome.crashes and outcome.status == 400 and "DialSipResponseCode='²²²'" in outcome.body


@pytest.mark.parametrize("host", ["[x", "h:abc", "h:99999"])
def test_forged_request_with_a_malformed_host_is_a_403(watched: Watched, host: str) -> None:
    outcome = watched.post(Webhook(host=host), "/voice", call_params(), signature="forged")
    assert (outcome.status, outcome.crashes) == (403, [])


@pytest.mark.parametrize("signature", ["\u00e9", "sig\u2713=", "\U0001f642"])
def test_forged_request_with_a_non_ascii_signature_is_a_403(watched: Watched, signature: str) -> None:
    outcome = watched.post(Webhook(), "/voice", call_params(), signature=signature)
    assert (outcome.status, outcome.crashes) == (403, [])


def test_screen_accept_without_a_call_sid_is_refused_not_crashed(watched: Watched) -> None:
    params = call_params(sid="", Digits="1")
    outcome = watched.post(Webhook(), "/voice/screen/accept", params, "tier=2")
    assert (outcome.status, outcome.body, outcome.crashes) == (400, "bad request: CallSid is missing", [])


def test_empty_called_number_is_a_400_not_a_store_outage(watched: Watched) -> None:
    outcome = watched.post(Webhook(), "/voice", call_params(to="", Called=""))
    assert outcome.status == 400 and "To and Called are both missing" in outcome.body and not outcome.crashes


def test_a_write_timeout_while_counting_a_live_failure_still_fails_over(watched: Watched) -> None:
    from botocore.exceptions import ReadTimeoutError

    late = PutError(
        "Failed to put item", cause=ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")
    )
    with (
        mock.patch.object(HealthShard, "save", side_effect=late),
        mock.patch.object(HealthShard, "update", side_effect=late),
    ):
        outcome = watched.post(
            Webhook(), "/voice/action", call_params(DialCallStatus="failed", DialSipResponseCode="503"), "tier=0&hop=1"
        )
    assert outcome.crashes == [] and dialed(outcome) == ("+14155550111",)
