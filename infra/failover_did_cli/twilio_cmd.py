"""`failover-did twilio attach NUMBER`: point a Twilio number's Voice URL (and, if given, its Voice Fallback
URL) at the deployed service through Twilio's REST API, showing every change before it is made.

`twilio.rest` and `boto3` are imported inside the functions that use them: `twilio.rest` is slow to import,
and nothing the Lambda webhook imports may pull it in. The pure parts (what changes, what is refused) are
small functions of a `NumberState`, so they are tested without any API.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from failover_did_cli.args import NUMBER
from failover_did_cli.env import LOCAL_ENV, STACK_ENV, configure_aws

VOICE_METHOD = "POST"
"""The webhook answers POST only (API Gateway routes `POST /voice`)."""
FALLBACK_METHOD = "GET"
"""The Voice Fallback URL is a static TwiML document published elsewhere: it is fetched with GET."""
BASE_URL_ENV = "TWILIO_API_BASE_URL"
"""Testing and local fakes only: send every Twilio REST request to this base URL instead of api.twilio.com."""
DEFAULT_STACK = "failover-did"
STACK_OUTPUT = "VoiceUrl"
REQUEST_TIMEOUT = 20.0
FIELDS = (
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "voice_fallback_method",
    "status_callback",
    "status_callback_method",
)
STATUS_PATH = "/status"
"""The call-status callback is the Voice URL's `/status` route: it tells the call log when a call ends."""
NONE_SHOWN = "(none)"


@dataclass(frozen=True)
class NumberState:
    """What matters here of one IncomingPhoneNumber record (empty strings read as None)."""

    sid: str
    phone_number: str
    account_sid: str = ""
    voice_url: str | None = None
    voice_method: str | None = None
    voice_fallback_url: str | None = None
    voice_fallback_method: str | None = None
    status_callback: str | None = None
    status_callback_method: str | None = None
    voice_application_sid: str | None = None
    trunk_sid: str | None = None
    voice_receive_mode: str | None = None

    @classmethod
    def of(cls, record: Any) -> NumberState:
        """From a twilio-python `IncomingPhoneNumberInstance` (or anything with the same attributes)."""

        def text(name: str) -> str | None:
            value = getattr(record, name, None)
            return str(value) if value not in (None, "") else None

        return cls(
            sid=text("sid") or "",
            phone_number=text("phone_number") or "",
            account_sid=text("account_sid") or "",
            voice_url=text("voice_url"),
            voice_method=text("voice_method"),
            voice_fallback_url=text("voice_fallback_url"),
            voice_fallback_method=text("voice_fallback_method"),
            status_callback=text("status_callback"),
            status_callback_method=text("status_callback_method"),
            voice_application_sid=text("voice_application_sid"),
            trunk_sid=text("trunk_sid"),
            voice_receive_mode=text("voice_receive_mode"),
        )


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    account_sid: str
    variables: str
    """The variables they came from, named in error messages."""


def binding_refusal(state: NumberState) -> str | None:
    """Why the Voice URL would have no effect on this number, or None when it would."""
    if state.trunk_sid:
        return (
            f"Twilio ignores the Voice URL while {state.phone_number} is bound to SIP trunk {state.trunk_sid}; "
            "unbind it in the console first"
        )
    if state.voice_application_sid:
        return (
            f"Twilio ignores the Voice URL while {state.phone_number} is bound to voice application "
            f"{state.voice_application_sid}; unbind it in the console first"
        )
    if state.voice_receive_mode == "fax":
        return (
            f"{state.phone_number} receives its calls as faxes (voice_receive_mode=fax); "
            "set it to receive voice calls in the console first"
        )
    return None


def status_callback_url(voice_url: str) -> str:
    """`https://host/voice` -> `https://host/voice/status` (a query, such as a test marker, is kept)."""
    parts = urlsplit(voice_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + STATUS_PATH))


def plan_changes(state: NumberState, voice_url: str, fallback_url: str | None = None) -> tuple[FieldChange, ...]:
    """Before and after of the voice and status-callback fields. With no `fallback_url`, the fallback fields
    stay as they are."""
    after = {
        "voice_url": voice_url,
        "voice_method": VOICE_METHOD,
        "status_callback": status_callback_url(voice_url),
        "status_callback_method": VOICE_METHOD,
    }
    if fallback_url is not None:
        after |= {"voice_fallback_url": fallback_url, "voice_fallback_method": FALLBACK_METHOD}
    return tuple(FieldChange(name, getattr(state, name), after.get(name, getattr(state, name))) for name in FIELDS)


def update_params(changes: Sequence[FieldChange]) -> dict[str, str]:
    """The keyword arguments of `IncomingPhoneNumberContext.update`: only the fields that change."""
    return {c.field: c.after for c in changes if c.changed and c.after is not None}


def format_changes(changes: Sequence[FieldChange]) -> list[str]:
    """`field  before  ->  after`, columns aligned; unchanged fields say so."""
    width = max(len(c.field) for c in changes)
    before_width = max(len(c.before or NONE_SHOWN) for c in changes)
    return [
        f"  {c.field:<{width}}  {c.before or NONE_SHOWN:<{before_width}}  "
        + (f"->  {c.after or NONE_SHOWN}" if c.changed else "(unchanged)")
        for c in changes
    ]


def any_changed(changes: Sequence[FieldChange]) -> bool:
    return any(c.changed for c in changes)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, allow_http: bool, option: str) -> list[str]:
    """Refuse a URL Twilio should not be given; return warnings about one it may be given."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint=option)
    warnings = []
    if parts.scheme == "http":
        if not allow_http:
            raise click.BadParameter(
                f"{url!r} is not https: Twilio would send every call's details in clear text "
                "(--allow-http permits it, for testing)",
                param_hint=option,
            )
        warnings.append(f"{option} {url} is plain http: call details travel unencrypted")
    if option == "--voice-url" and not parts.path.rstrip("/").endswith("/voice"):
        warnings.append(f"--voice-url {url} does not end in /voice, the path the webhook answers on")
    if is_loopback(parts.hostname):
        warnings.append(f"{option} {url} is on this machine: Twilio cannot reach it (use a tunnel's URL)")
    return warnings


CREDENTIALS_HELP = (
    "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID"
)


def twilio_credentials(environ: Mapping[str, str]) -> Credentials:
    """An API key (TWILIO_API_KEY + TWILIO_API_SECRET) when one is set, else the account's auth token."""

    def read(name: str) -> str:
        return environ.get(name, "").strip()

    account_sid, api_key = read("TWILIO_ACCOUNT_SID"), read("TWILIO_API_KEY")
    if api_key:
        needed, password = ("TWILIO_ACCOUNT_SID", "TWILIO_API_SECRET"), read("TWILIO_API_SECRET")
        username, variables = api_key, "TWILIO_API_KEY and TWILIO_API_SECRET"
    else:
        needed, password = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"), read("TWILIO_AUTH_TOKEN")
        username, variables = account_sid, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    missing = [name for name in needed if not read(name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        with_key = " (TWILIO_API_KEY is set)" if api_key else ""
        raise click.UsageError(f"{' and '.join(missing)} {verb} not set{with_key}; {CREDENTIALS_HELP}")
    if api_key and not api_key.startswith("SK"):
        raise click.UsageError(f"TWILIO_API_KEY must be an API key SID (SK...), not {api_key[:2]}...")
    if not account_sid.startswith("AC"):
        raise click.UsageError(f"TWILIO_ACCOUNT_SID must be the account SID (AC...), not {account_sid[:2]}...")
    return Credentials(username, password, account_sid, variables)


def api_base_url(environ: Mapping[str, str]) -> str | None:
    """TWILIO_API_BASE_URL, checked: credentials go there, so plain http only to this machine."""
    value = environ.get(BASE_URL_ENV, "").strip().rstrip("/")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.UsageError(f"{BASE_URL_ENV}={value!r} is not an http(s) base URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise click.UsageError(f"{BASE_URL_ENV}={value!r}: plain http is allowed only to 127.0.0.1/localhost")
    return value


def rebase(url: str, base_url: str) -> str:
    """The same request URL on another scheme and host (the path and query kept)."""
    base = urlsplit(base_url)
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, parts.fragment))


def make_client(credentials: Credentials, base_url: str | None = None) -> Any:
    """A twilio-python REST client; with `base_url`, every request goes there instead of api.twilio.com
    (through a custom HttpClient, the library's supported hook for changing its requests)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    class RebasingHttpClient(TwilioHttpClient):  # type: ignore[misc]
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            return super().request(method, rebase(url, base_url) if base_url else url, *args, **kwargs)

    http_client = RebasingHttpClient(timeout=REQUEST_TIMEOUT)
    return Client(
        credentials.username, credentials.password, account_sid=credentials.account_sid, http_client=http_client
    )


def twilio_failure(error: Exception) -> tuple[int | None, int | None, str]:
    """HTTP status, Twilio error code and message of whatever twilio-python raised."""
    import json

    status = getattr(error, "status", None)
    code = getattr(error, "code", None)
    message = getattr(error, "detail", None) or getattr(error, "title", None) or getattr(error, "msg", None)
    # A failed list page raises a bare TwilioException("Unable to fetch page", response).
    response = next((arg for arg in getattr(error, "args", ()) if hasattr(arg, "status_code")), None)
    if response is not None:
        status = response.status_code
        try:
            payload = json.loads(response.text)
        except ValueError:
            payload = {}
        if isinstance(payload, dict):
            code = payload.get("code", code)
            message = payload.get("detail") or payload.get("message") or message
    text = str(message or error).strip().rstrip(".")
    return (int(status) if isinstance(status, int) else None, int(code) if isinstance(code, int) else None, text)


@contextmanager
def twilio_errors(credentials: Credentials, base_url: str | None) -> Iterator[None]:
    """Turn Twilio API and network failures into one readable line instead of a traceback."""
    from twilio.base.exceptions import TwilioException

    where = base_url or "api.twilio.com"
    try:
        yield
    except TwilioException as error:
        status, code, message = twilio_failure(error)
        answer = ", ".join(
            part for part in (f"HTTP {status}" if status else "", f"error {code}" if code else "") if part
        )
        if status == 401:
            raise click.ClickException(
                f"Twilio refused the credentials for account {credentials.account_sid} ({answer}: {message}); "
                f"check {credentials.variables}"
            ) from error
        raise click.ClickException(f"Twilio answered {answer or 'with an error'}: {message}") from error
    except OSError as error:  # requests' ConnectionError, Timeout, ... are OSErrors
        raise click.ClickException(f"cannot reach the Twilio API at {where}: {error}") from error


def voice_url_from_stack(stack: str, region: str | None = None) -> str:
    """The deployed stack's VoiceUrl output."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    hint = "or give --voice-url"
    try:
        client = boto3.client("cloudformation", region_name=region)
        where = f"stack {stack!r} in {client.meta.region_name}"
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise click.ClickException(
            f"cannot read stack {stack!r}: {message} (deploy it, pass --stack, {hint})"
        ) from error
    except BotoCoreError as error:
        raise click.ClickException(f"cannot read stack {stack!r}: {error} ({hint})") from error
    outputs = stacks[0].get("Outputs", []) if stacks else []
    for output in outputs:
        if output.get("OutputKey") == STACK_OUTPUT and output.get("OutputValue"):
            return str(output["OutputValue"])
    status = stacks[0].get("StackStatus", "unknown") if stacks else "unknown"
    raise click.ClickException(f"{where} ({status}) has no {STACK_OUTPUT} output; {hint}")


def find_number(client: Any, number: str) -> Any:
    """The account's IncomingPhoneNumber record of `number` (E.164), or None.
    Twilio's PhoneNumber filter matches patterns, so the exact number is picked from what it lists."""
    for record in client.incoming_phone_numbers.list(phone_number=number, page_size=20):
        if record.phone_number == number:
            return record
    return None


@dataclass(frozen=True)
class Attachment:
    """One number's planned attachment: what it is now and what changes."""

    record: Any
    state: NumberState
    changes: tuple[FieldChange, ...]

    @property
    def params(self) -> dict[str, str]:
        return update_params(self.changes)

    def apply(self) -> NumberState:
        """Send the update (only the changed fields) and check that Twilio now holds what was asked."""
        updated = NumberState.of(self.record.update(**self.params))
        wrong = [
            f"{c.field}={getattr(updated, c.field)!r}" for c in self.changes if getattr(updated, c.field) != c.after
        ]
        if wrong:
            raise click.ClickException(f"Twilio accepted the update but now reports {', '.join(wrong)}")
        return updated


def prepare_attachment(client: Any, number: str, voice_url: str, fallback_url: str | None = None) -> Attachment:
    """Find `number` on the client's account, refuse a binding that would ignore the Voice URL, and plan the
    change. A caller that computes its own fallback URL (e.g. a published static TwiML cascade) passes it here."""
    record = find_number(client, number)
    if record is None:
        account = getattr(client, "account_sid", None) or "this account"
        raise click.ClickException(
            f"{number} is not a number of account {account} (a subaccount's number needs its TWILIO_ACCOUNT_SID)"
        )
    state = NumberState.of(record)
    refusal = binding_refusal(state)
    if refusal:
        raise click.ClickException(refusal)
    return Attachment(record, state, plan_changes(state, voice_url, fallback_url))


def published_fallback_url(number: str) -> str | None:
    """The number's static fallback URL, if `rules apply` published one where the tables are configured
    (FAILOVER_DID_STACK or FAILOVER_DID_LOCAL); None when nothing is configured or published."""
    if not (os.environ.get(STACK_ENV) or os.environ.get(LOCAL_ENV)):
        return None
    configure_aws()
    from pynamodb.exceptions import PynamoDBException

    from failover_did.store import rules_store
    from failover_did_cli.fallback_publish import NotConfigured, config_from_env

    try:
        config = config_from_env()
        stored = rules_store.get_stored(number)
    except (NotConfigured, PynamoDBException) as error:
        warn(f"no published fallback found: {error}")
        return None
    if stored is None or not stored.fallback_key:
        warn(f"{number} has no published fallback (run `failover-did rules apply` first)")
        return None
    return config.url(stored.fallback_key)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group()
def twilio() -> None:
    """Configure Twilio numbers through Twilio's REST API."""


@twilio.command()
@click.argument("number", type=NUMBER)
@click.option("--voice-url", help=f"The Voice URL to set  [default: the stack's {STACK_OUTPUT} output]")
@click.option(
    "--fallback-url",
    help=f"The Voice Fallback URL to set (fetched with {FALLBACK_METHOD})  [default: the number's static fallback "
    "published by `rules apply`, when the stack or local stack is configured]",
)
@click.option("--stack", default=DEFAULT_STACK, show_default=True, help="CloudFormation stack to read VoiceUrl from.")
@click.option("--region", help="AWS region of the stack  [default: the AWS configuration's]")
@click.option("--allow-http", is_flag=True, help="Accept plain http:// URLs (testing only; Twilio prefers https).")
@click.option("--dry-run", is_flag=True, help="Show the changes and make none.")
def attach(
    number: str,
    voice_url: str | None,
    fallback_url: str | None,
    stack: str,
    region: str | None,
    allow_http: bool,
    dry_run: bool,
) -> None:
    """Point NUMBER's Voice URL at the service (HTTP POST), and its call-status callback at the Voice URL's
    /status route (POST, so the call log learns when each call ends), after showing each field's
    before -> after.

    \b
    Credentials, from the environment:
      TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or
      TWILIO_API_KEY + TWILIO_API_SECRET (+ TWILIO_ACCOUNT_SID); an API key wins when both are set.

    Refuses a number bound to a voice application or a SIP trunk (Twilio would ignore its Voice URL).
    TWILIO_API_BASE_URL (testing and local fakes only) sends the REST requests to another base URL,
    e.g. http://127.0.0.1:8080, instead of https://api.twilio.com.
    """
    credentials = twilio_credentials(os.environ)
    base_url = api_base_url(os.environ)
    if fallback_url is None:
        fallback_url = published_fallback_url(number)
        if fallback_url:
            click.echo(f"Voice Fallback URL from the published static fallback: {fallback_url}")
    if voice_url is None:
        voice_url = voice_url_from_stack(stack, region)
        click.echo(f"Voice URL from stack {stack!r}: {voice_url}")
    warnings = check_webhook_url(voice_url, allow_http=allow_http, option="--voice-url")
    if fallback_url is not None:
        warnings += check_webhook_url(fallback_url, allow_http=allow_http, option="--fallback-url")
        if fallback_url.rstrip("/") == voice_url.rstrip("/"):
            warnings.append("--fallback-url is the Voice URL itself: it cannot answer when the service is down")
    for message in warnings:
        warn(message)
    if base_url:
        warn(f"{BASE_URL_ENV} is set: talking to {base_url}, not to Twilio")

    client = make_client(credentials, base_url)
    with twilio_errors(credentials, base_url):
        attachment = prepare_attachment(client, number, voice_url, fallback_url)
        state = attachment.state
        click.echo(f"{state.phone_number} ({state.sid}) on account {state.account_sid or credentials.account_sid}")
        for line in format_changes(attachment.changes):
            click.echo(line)
        if fallback_url is None:
            click.echo("  voice fallback left as it is (--fallback-url sets it)")
        if not any_changed(attachment.changes):
            click.echo(f"already attached: {state.phone_number} answers at {voice_url}; nothing to change")
            return
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        attachment.apply()
    click.echo(f"attached: {state.phone_number} -> {voice_url}")
