"""Pointing the commands at a stack with one variable:

- FAILOVER_DID_LOCAL (the local stack's AWS endpoint) stands for the endpoint, region and throwaway
  credentials that boto3 and PynamoDB read, and for the local fallback bucket;
- FAILOVER_DID_STACK (a deployed CloudFormation stack's name) stands for the table names and the
  fallback bucket that the stack's outputs give, with the ordinary AWS configuration.

Both must be applied before anything imports the store, whose table names are read at import time.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import click

from failover_did.fallback_publish import FALLBACK_BASE_URL_ENV as FALLBACK_BASE_URL_ENV
from failover_did.fallback_publish import FALLBACK_BUCKET_ENV as FALLBACK_BUCKET_ENV
from failover_did.fallback_publish import FALLBACK_PREFIX as FALLBACK_PREFIX
from failover_did.settings import DYNAMODB_TIMEOUT_ENV

LOCAL_ENV = "FAILOVER_DID_LOCAL"
STACK_ENV = "FAILOVER_DID_STACK"
REGION = "us-east-1"

NOTIFY_TOPIC_ARN_ENV = "NOTIFY_TOPIC_ARN"
LOCAL_NOTIFY_TOPIC = "failover-did-notify"
LOCAL_ACCOUNT = "123456789012"  # moto's account
LOCAL_FALLBACK_BUCKET = "failover-did-fallback"

STACK_OUTPUT_ENV: dict[str, str] = {
    "RulesTableName": "RULES_TABLE_NAME",
    "CallsTableName": "CALLS_TABLE_NAME",
    "HealthTableName": "HEALTH_TABLE_NAME",
    "EventsTableName": "EVENTS_TABLE_NAME",
    "CallLogTableName": "CALL_LOG_TABLE_NAME",
    "FallbackBucketName": FALLBACK_BUCKET_ENV,
    "FallbackBaseUrl": FALLBACK_BASE_URL_ENV,
    "NotifyTopicArn": NOTIFY_TOPIC_ARN_ENV,
    "ConsoleUserPoolId": "CONSOLE_USER_POOL_ID",
}
"""Stack output -> the environment variable it sets (an already set variable wins)."""

_stack_outputs: dict[str, dict[str, str]] = {}


LOCAL_KEY = "local"  # the emulation has no authentication: any key signs a request it takes


def local_aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def local_client(service: str, endpoint: str | None, config: Any = None) -> Any:
    """A boto3 client of `service` at the AWS emulation at `endpoint` (None: boto3's own endpoint, which is
    moto in-process under mock_aws), with the key and region the local stack's own processes use."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        config=config,
    )


def local_fallback_environment(endpoint: str, bucket: str = LOCAL_FALLBACK_BUCKET) -> dict[str, str]:
    """The local stack's fallback bucket, and its objects' base URL in moto's path style."""
    return {
        FALLBACK_BUCKET_ENV: bucket,
        FALLBACK_BASE_URL_ENV: f"{endpoint.rstrip('/')}/{bucket}/{FALLBACK_PREFIX}",
    }


def local_notify_topic_arn() -> str:
    """The local stack's notify topic (moto names its ARN from the region, account and name)."""
    return f"arn:aws:sns:{REGION}:{LOCAL_ACCOUNT}:{LOCAL_NOTIFY_TOPIC}"


def use_local_stack_if_set() -> str | None:
    """Before anything imports the store: aim boto3/PynamoDB at the local stack if FAILOVER_DID_LOCAL
    names one (and default the fallback bucket to the local stack's). Returns the endpoint, or None to
    use the ordinary AWS configuration."""
    endpoint = os.environ.get(LOCAL_ENV, "").strip()
    if endpoint:
        check_local_url(endpoint)
        os.environ.update(local_aws_environment(endpoint))
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(key, None)
        for key, value in local_fallback_environment(endpoint).items():
            os.environ.setdefault(key, value)
        os.environ.setdefault(NOTIFY_TOPIC_ARN_ENV, local_notify_topic_arn())
    return endpoint or None


def check_local_url(value: str) -> None:
    """FAILOVER_DID_LOCAL must be the URL the banner prints; anything else is one line, not a traceback."""
    example = "http://127.0.0.1:3001"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        hint = f"http://{value}" if "://" not in value else example
        raise click.ClickException(
            f"{LOCAL_ENV}={value!r} is not the local stack's URL: export it as `failover-did local` prints it "
            f"in its banner, e.g. {LOCAL_ENV}={hint}"
        )


LOCAL_SERVER_NAME = "failover-did-local"
"""The local stack's webhook server names itself so: a command pointed at it instead of the AWS emulation
can say so."""


def local_stack_hint(endpoint: str, timeout: float = 2.0) -> str:
    """What is wrong with the local stack at `endpoint` and what to do, asked only once a command has
    already failed to reach it."""
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            server = response.headers.get("Server", "")
    except urllib.error.HTTPError as error:
        server = error.headers.get("Server", "")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return (
            f"nothing answers at {endpoint} ({reason}): is `failover-did local` running? "
            f"Start it, then export {LOCAL_ENV} as its banner prints"
        )
    if server.startswith(LOCAL_SERVER_NAME):
        port = urlsplit(endpoint).port or 0
        return (
            f"{endpoint} is the local stack's webhook; {LOCAL_ENV} takes its AWS emulation URL, which the "
            f"banner prints (by default the next port: {LOCAL_ENV}={endpoint.replace(f':{port}', f':{port + 1}')})"
        )
    if "amazon.com" not in server.lower():
        return f"{endpoint} answers, but it is not the AWS emulation of `failover-did local`"
    return f"the local stack at {endpoint} answered with an error"


def use_stack_if_set(client_factory: Callable[[], Any] | None = None) -> str | None:
    """Before anything imports the store: if FAILOVER_DID_STACK names a deployed stack, read its outputs
    (once per process) and set the table and fallback variables from them; a variable already set wins.
    Returns the stack name, or None. FAILOVER_DID_LOCAL, when also set, wins (with a warning): a command
    meant for the local stack never writes to a deployed one by accident."""
    stack = os.environ.get(STACK_ENV, "").strip()
    if not stack:
        return None
    if os.environ.get(LOCAL_ENV, "").strip():
        click.echo(f"warning: {LOCAL_ENV} and {STACK_ENV} are both set; using the local stack", err=True)
        return None
    for output, variable in STACK_OUTPUT_ENV.items():
        value = stack_outputs(stack, client_factory).get(output)
        if value:
            os.environ.setdefault(variable, value)
    return stack


def stack_outputs(stack: str, client_factory: Callable[[], Any] | None = None) -> Mapping[str, str]:
    """The outputs of a deployed stack (OutputKey -> OutputValue), read once per process."""
    if stack in _stack_outputs:
        return _stack_outputs[stack]
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if client_factory is None:
            import boto3

            client = boto3.client("cloudformation")
        else:
            client = client_factory()
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise click.ClickException(f"cannot read stack {stack!r} ({STACK_ENV}): {message}") from error
    except BotoCoreError as error:
        raise click.ClickException(f"cannot read stack {stack!r} ({STACK_ENV}): {error}") from error
    outputs = {
        str(o["OutputKey"]): str(o["OutputValue"])
        for o in (stacks[0].get("Outputs", []) if stacks else [])
        if o.get("OutputKey") and o.get("OutputValue")
    }
    _stack_outputs[stack] = outputs
    return outputs


def current_stack_outputs() -> Mapping[str, str]:
    """The outputs of the stack FAILOVER_DID_STACK names (empty when it is unset or the local stack wins)."""
    stack = os.environ.get(STACK_ENV, "").strip()
    if not stack or os.environ.get(LOCAL_ENV, "").strip():
        return {}
    return stack_outputs(stack)


def configure_aws() -> None:
    """What every command that reads or writes the tables calls first: the local stack
    (FAILOVER_DID_LOCAL) or a deployed stack's outputs (FAILOVER_DID_STACK), else plain AWS settings."""
    os.environ.setdefault(DYNAMODB_TIMEOUT_ENV, "10")  # an operator waits longer than Twilio does
    use_local_stack_if_set()
    use_stack_if_set()
