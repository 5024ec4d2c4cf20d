"""The webhook's last resort: when DynamoDB fails and no rule is cached, read the number's static
cascade (published by `rules apply`) from S3 — another service, on another path — with short timeouts."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from failover_did.fallback import private_key
from failover_did.observability import logger
from failover_did.store.tables import aws_region

BUCKET_ENV = "FALLBACK_BUCKET"
TIMEOUT_SECONDS = 0.5


@lru_cache(maxsize=1)
def _s3() -> Any:
    # botocore directly (boto3 is not on the webhook's import path), built only when first needed.
    from botocore.config import Config
    from botocore.session import get_session

    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
    config = Config(
        connect_timeout=TIMEOUT_SECONDS,
        read_timeout=TIMEOUT_SECONDS,
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": style},
    )
    return get_session().create_client("s3", region_name=aws_region(), config=config)


def static_cascade_of(number: str) -> str | None:
    """The number's published static cascade, or None (no bucket configured, nothing published, S3 down)."""
    bucket = os.environ.get(BUCKET_ENV, "").strip()
    if not bucket or not number:
        return None
    try:
        body = _s3().get_object(Bucket=bucket, Key=private_key(number))["Body"].read()
        return str(body.decode("utf-8"))
    except Exception as error:  # any failure here: the caller falls back to a spoken apology
        logger.error("static fallback unreadable", extra={"number": number, "error": str(error)})
        return None
