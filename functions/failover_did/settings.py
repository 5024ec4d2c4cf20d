"""Settings from the environment, read and checked once per container into one typed object.

`settings()` is cached: a Lambda reads its environment at cold start and a bad value fails then, naming
the variable. Tests that change the environment call `settings.cache_clear()`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

ACCOUNT_SID_ENV = "TWILIO_ACCOUNT_SID"
ALLOW_PRIVATE_TARGETS_ENV = "ALLOW_PRIVATE_TARGETS"
PUBLIC_BASE_URL_ENV = "PUBLIC_BASE_URL"
NOTIFY_TOPIC_ARN_ENV = "NOTIFY_TOPIC_ARN"
EVENT_RETENTION_DAYS_ENV = "EVENT_RETENTION_DAYS"
HEALTH_DOWN_AFTER_ENV = "HEALTH_DOWN_AFTER"
HEALTH_UP_AFTER_ENV = "HEALTH_UP_AFTER"
PROBE_TIMEOUT_ENV = "PROBE_TIMEOUT_SECONDS"

DEFAULT_RETENTION_DAYS = 90
DEFAULT_DOWN_AFTER = 2
DEFAULT_UP_AFTER = 2
DEFAULT_PROBE_TIMEOUT = 2.0
MAX_PROBE_TIMEOUT = 10.0
DYNAMODB_TIMEOUT_ENV = "DYNAMODB_TIMEOUT_SECONDS"
DEFAULT_DYNAMODB_TIMEOUT = 0.5
MAX_DYNAMODB_TIMEOUT = 60.0

ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class SettingError(ValueError):
    """A setting in the environment is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    # The deployment's Twilio account: when set, a webhook naming another AccountSid is refused.
    account_sid: str | None = None
    # Health targets on loopback and private ranges may be probed (the local stack tests on loopback);
    # link-local, metadata, unspecified and multicast addresses never are.
    allow_private_targets: bool = False
    # Our URL prefix as Twilio reaches it (a custom domain, a tunnel); empty: from the API's own domain.
    public_base_url: str = ""
    # The SNS topic people's notices go to (alarms and missed calls); empty: notices are only logged.
    notify_topic_arn: str = ""
    # How long events and the call log are kept (their DynamoDB TTL), in days.
    event_retention_days: int = DEFAULT_RETENTION_DAYS
    # Failed checks in a row that take a reached destination out of rotation, and good ones that bring it back.
    health_down_after: int = DEFAULT_DOWN_AFTER
    health_up_after: int = DEFAULT_UP_AFTER
    # Seconds one health probe may take in all (DNS, connect, retransmissions, answer).
    probe_timeout_seconds: float = DEFAULT_PROBE_TIMEOUT


def flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingError(f"{name}={environ.get(name)!r}: expected true or false")


def whole_number(environ: Mapping[str, str], name: str, default: int, lowest: int = 1) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < lowest:
        raise SettingError(f"{name}={raw!r}: expected a whole number, at least {lowest}")
    return int(raw)


def seconds(environ: Mapping[str, str], name: str, default: float, highest: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= highest:  # also refuses nan and inf
        raise SettingError(f"{name}={raw!r}: expected seconds, more than 0 and at most {highest:g}")
    return value


def load(environ: Mapping[str, str]) -> Settings:
    account_sid = environ.get(ACCOUNT_SID_ENV, "").strip() or None
    if account_sid is not None and not ACCOUNT_SID.fullmatch(account_sid):
        raise SettingError(f"{ACCOUNT_SID_ENV}={account_sid!r}: expected AC followed by 32 hex digits")
    public_base_url = environ.get(PUBLIC_BASE_URL_ENV, "").strip().rstrip("/")
    if public_base_url and not public_base_url.startswith(("https://", "http://")):
        raise SettingError(f"{PUBLIC_BASE_URL_ENV}={public_base_url!r}: expected an http(s):// URL")
    notify_topic_arn = environ.get(NOTIFY_TOPIC_ARN_ENV, "").strip()
    if notify_topic_arn and not SNS_TOPIC_ARN.fullmatch(notify_topic_arn):
        raise SettingError(f"{NOTIFY_TOPIC_ARN_ENV}={notify_topic_arn!r}: expected an SNS topic ARN")
    return Settings(
        account_sid=account_sid,
        allow_private_targets=flag(environ, ALLOW_PRIVATE_TARGETS_ENV),
        public_base_url=public_base_url,
        notify_topic_arn=notify_topic_arn,
        event_retention_days=whole_number(environ, EVENT_RETENTION_DAYS_ENV, DEFAULT_RETENTION_DAYS),
        health_down_after=whole_number(environ, HEALTH_DOWN_AFTER_ENV, DEFAULT_DOWN_AFTER),
        health_up_after=whole_number(environ, HEALTH_UP_AFTER_ENV, DEFAULT_UP_AFTER),
        probe_timeout_seconds=seconds(environ, PROBE_TIMEOUT_ENV, DEFAULT_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT),
    )


def dynamodb_timeout(environ: Mapping[str, str]) -> float:
    """DYNAMODB_TIMEOUT_SECONDS, checked: read on its own, once, where the store is imported (an operator's
    command sets a longer one before that; the webhook keeps the default)."""
    return seconds(environ, DYNAMODB_TIMEOUT_ENV, DEFAULT_DYNAMODB_TIMEOUT, MAX_DYNAMODB_TIMEOUT)


@cache
def settings() -> Settings:
    return load(os.environ)
