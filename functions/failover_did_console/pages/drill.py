"""Drill: the checks of `failover-did drill`, run from the number's page against the webhook of the same
deployment. Requests are signed with the webhook's own auth token (SSM in AWS) and marked as test calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from failover_did.drill.checks import Check, run_drill
from failover_did.drill.simulator import TwilioSimulator, marked_as_test
from failover_did.settings import settings as service_settings
from failover_did.store import events, rules_store
from failover_did.webhook.signature import TokenSource
from failover_did_console.settings import ConsoleSettings

EVENT_WAIT_SECONDS = 3.0  # the webhook writes the failover event before it answers; a little slack
REQUEST_TIMEOUT_SECONDS = 5.0
VOICE_URL_MAX_AGE = 60
tokens = TokenSource()  # the webhook's token source: cached per container, SSM in AWS


class VoiceUrlUnknown(Exception):
    """The drill cannot tell which webhook to call; the message says which setting to give."""


def voice_url(config: ConsoleSettings, event: Mapping[str, Any]) -> str:
    """The Voice URL of this deployment: CONSOLE_VOICE_URL, else the SSM parameter CONSOLE_VOICE_URL_PARAM
    names (the local stack publishes its own there), else PUBLIC_BASE_URL's /voice, else /voice on the
    domain API Gateway received this request on (never the client's Host header)."""
    if config.voice_url:
        return config.voice_url
    if config.voice_url_param:
        from aws_lambda_powertools.utilities import parameters

        try:
            return str(parameters.get_parameter(config.voice_url_param, max_age=VOICE_URL_MAX_AGE))
        except Exception as error:  # any SSM failure: say which parameter could not be read
            raise VoiceUrlUnknown(f"cannot read the Voice URL from SSM parameter {config.voice_url_param}") from error
    base = service_settings().public_base_url
    if base:
        return f"{base}/voice"
    context = event.get("requestContext")
    domain = context.get("domainName") if isinstance(context, Mapping) else None
    if not isinstance(domain, str) or not domain:
        raise VoiceUrlUnknown("set CONSOLE_VOICE_URL or PUBLIC_BASE_URL: the API's domain is unknown")
    return f"https://{domain}/voice"


def drill(number: str, url: str) -> list[Check]:
    """Every check of the drill, in order; a webhook that cannot be reached is one failed row."""
    stored = rules_store.get_stored(number)
    token = tokens.get()
    sim = TwilioSimulator(
        marked_as_test(url), token, timeout=REQUEST_TIMEOUT_SECONDS, account_sid=service_settings().account_sid
    )

    def find_events(number: str, since: datetime) -> list[events.Event]:
        return list(events.events_of(number, since))

    try:
        return run_drill(number, stored.rule if stored else None, sim, token, find_events, wait=EVENT_WAIT_SECONDS)
    except OSError as error:
        return [Check("Webhook reachable", False, f"cannot reach {url}: {error}")]
