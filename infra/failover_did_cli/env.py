"""Pointing the commands at the local stack: one variable, FAILOVER_DID_LOCAL, stands for the AWS
endpoint, region and throwaway credentials that boto3 and PynamoDB read."""

from __future__ import annotations

import os

LOCAL_ENV = "FAILOVER_DID_LOCAL"
REGION = "us-east-1"


def local_aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def use_local_stack_if_set() -> str | None:
    """Before anything imports the store: aim boto3/PynamoDB at the local stack if FAILOVER_DID_LOCAL
    names one. Returns the endpoint, or None to use the ordinary AWS configuration."""
    endpoint = os.environ.get(LOCAL_ENV, "").strip()
    if endpoint:
        os.environ.update(local_aws_environment(endpoint))
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(key, None)
    return endpoint or None
