"""The static fallback's publishing (failover_did.fallback_publish, shared with the console), with the
command line's hint on how to configure it."""

from __future__ import annotations

from collections.abc import Mapping

from failover_did.fallback_publish import (
    CACHE_CONTROL,
    DIGEST_METADATA,
    FallbackConfig,
    FallbackResult,
    NotConfigured,
    Publisher,
    describe_error,
    digest,
    document,
    publish_after_apply,
)
from failover_did.fallback_publish import config_from_env as _config_from_env
from failover_did_cli.env import FALLBACK_BASE_URL_ENV, FALLBACK_BUCKET_ENV, LOCAL_ENV, STACK_ENV

__all__ = [
    "CACHE_CONTROL",
    "DIGEST_METADATA",
    "FallbackConfig",
    "FallbackResult",
    "NotConfigured",
    "Publisher",
    "config_from_env",
    "describe_error",
    "digest",
    "document",
    "publish_after_apply",
]

UNSET_HINT = (
    f" (set {STACK_ENV} to the deployed stack's name, or {FALLBACK_BUCKET_ENV} and {FALLBACK_BASE_URL_ENV} "
    f"from its outputs; {LOCAL_ENV} sets them for the local stack)"
)


def config_from_env(environ: Mapping[str, str] | None = None) -> FallbackConfig:
    return _config_from_env(environ, unset_hint=UNSET_HINT)
