"""Who is running a command, for the audit events of rule changes: the AWS caller identity for a deployed
stack (one STS call per command), the local user for the local stack."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any

from failover_did_cli.env import LOCAL_ENV


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def operator_identity(sts_factory: Callable[[], Any] | None = None) -> str:
    """`alice (local stack)`, or the caller's ARN; `unknown (why)` when STS cannot say, so the change is
    still recorded."""
    if os.environ.get(LOCAL_ENV, "").strip():
        return f"{local_user()} (local stack)"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if sts_factory is None:
            import boto3

            client = boto3.client("sts")
        else:
            client = sts_factory()
        return str(client.get_caller_identity()["Arn"])
    except ClientError as error:
        return f"unknown ({error.response.get('Error', {}).get('Message', str(error))})"
    except BotoCoreError as error:
        return f"unknown ({error})"
