"""Where the webhook a command calls is (the local stack's, a deployed stack's); the simulator of Twilio's
side of a call lives in failover_did.drill.simulator and is re-exported here for the commands and tests."""

from __future__ import annotations

import click

from failover_did.drill.simulator import (
    PLACEHOLDER_ACCOUNT_SID,
    TEST_MARKER,
    Dial,
    Reply,
    SimulatedCall,
    TwilioSimulator,
    marked_as_test,
    parse_reply,
)
from failover_did_cli.env import LOCAL_ENV, check_local_url, current_stack_outputs, local_client, local_stack_hint

__all__ = [
    "DEFAULT_VOICE_URL",
    "PLACEHOLDER_ACCOUNT_SID",
    "TEST_MARKER",
    "VOICE_URL_HELP",
    "VOICE_URL_PARAMETER",
    "Dial",
    "Reply",
    "SimulatedCall",
    "TwilioSimulator",
    "find_voice_url",
    "local_voice_url",
    "marked_as_test",
    "parse_reply",
]

DEFAULT_VOICE_URL = "http://127.0.0.1:3000/voice"
VOICE_URL_PARAMETER = "/failover-did/local/voice-url"
"""Where the running local stack publishes its Voice URL in its own AWS emulation (an SSM parameter), so
that `simulate` and `drill` find it through FAILOVER_DID_LOCAL whatever ports it runs on."""
VOICE_URL_HELP = (
    f"The Voice URL to call  [default: the one the local stack at {LOCAL_ENV} publishes, else "
    f"FAILOVER_DID_STACK's VoiceUrl output, else {DEFAULT_VOICE_URL}]"
)


def find_voice_url(url: str | None) -> str:
    """The webhook a command calls: --url, else the running local stack's (FAILOVER_DID_LOCAL), else the
    deployed stack's (FAILOVER_DID_STACK), else the local stack's default address."""
    import os

    if url:
        return url
    endpoint = os.environ.get(LOCAL_ENV, "").strip()
    if endpoint:
        return local_voice_url(endpoint)
    return current_stack_outputs().get("VoiceUrl", DEFAULT_VOICE_URL)


def local_voice_url(endpoint: str) -> str:
    """The Voice URL the local stack whose AWS emulation is at `endpoint` published at start; a stopped or
    wrong endpoint is one line saying what to do."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    check_local_url(endpoint)
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
    ssm = local_client("ssm", endpoint, config)
    try:
        return str(ssm.get_parameter(Name=VOICE_URL_PARAMETER)["Parameter"]["Value"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise click.ClickException(
                f"the AWS emulation at {endpoint} holds no local stack's Voice URL: is it `failover-did local`'s? "
                "Pass the webhook's URL with --url"
            ) from error
        raise click.ClickException(local_stack_hint(endpoint)) from error
    except (BotoCoreError, ValueError) as error:
        raise click.ClickException(local_stack_hint(endpoint)) from error
