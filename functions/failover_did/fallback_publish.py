"""Publishing each number's static fallback TwiML (`failover_did.fallback.static_cascade`) to S3.

After `rules apply` writes the rules, each number is read back and every added or changed number's stored
rule is put to
`s3://<FALLBACK_BUCKET>/fallback/<fallback_key>.xml`; an unchanged number's is put again only when the
object is missing or differs (its `sha256` metadata), so a publish that failed halfway is repaired by the
next apply. Deleted and pruned numbers lose their object. The number's Voice Fallback URL is
`FALLBACK_BASE_URL + <fallback_key>.xml`.

The key is random (`secrets.token_urlsafe(24)`), stored on the rule's item in the same transaction as
the rule (`rules_store.apply_rules`), and kept for as long as the number has a rule: the URL set in Twilio
stays valid across edits. Anyone who knows a URL can read that document (Twilio fetches it without
credentials); nobody can list the bucket.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from failover_did.rules.model import Rule
    from failover_did.store.rules_store import Change, StoredRule

FALLBACK_BUCKET_ENV = "FALLBACK_BUCKET"
FALLBACK_BASE_URL_ENV = "FALLBACK_BASE_URL"
FALLBACK_PREFIX = "fallback/"
"""Every published fallback document's key starts with this (the template's bucket policy lets anyone GET
`fallback/*` and nothing else); the fallback base URL ends with it."""
CACHE_CONTROL = "no-cache"
PUBLISH_THREADS = 8
"""S3 writes in flight at once for `rules apply`: each number's documents are independent objects, and one
at a time a thousand numbers wait out two thousand round trips."""
DIGEST_METADATA = "sha256"


class NotConfigured(Exception):
    """No fallback bucket is configured; the message says what is missing."""


@dataclass(frozen=True)
class FallbackConfig:
    bucket: str
    base_url: str  # ends with "/fallback/"

    def object_key(self, key: str) -> str:
        return f"{FALLBACK_PREFIX}{key}.xml"

    def url(self, key: str) -> str:
        return f"{self.base_url}{key}.xml"


def config_from_env(environ: Mapping[str, str] | None = None, *, unset_hint: str = "") -> FallbackConfig:
    """FALLBACK_BUCKET and FALLBACK_BASE_URL, checked; NotConfigured says why there is no fallback
    (`unset_hint`: how the caller's user sets them, added when neither is set)."""
    environ = os.environ if environ is None else environ
    bucket = environ.get(FALLBACK_BUCKET_ENV, "").strip()
    base = environ.get(FALLBACK_BASE_URL_ENV, "").strip()
    if not bucket and not base:
        raise NotConfigured(f"{FALLBACK_BUCKET_ENV} is not set{unset_hint}")
    if not bucket:
        raise NotConfigured(f"{FALLBACK_BASE_URL_ENV} is set but {FALLBACK_BUCKET_ENV} is not")
    if not base:
        raise NotConfigured(
            f"{FALLBACK_BUCKET_ENV} is set but {FALLBACK_BASE_URL_ENV} is not (the stack's FallbackBaseUrl output)"
        )
    base = base if base.endswith("/") else base + "/"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotConfigured(f"{FALLBACK_BASE_URL_ENV}={base!r} is not an http(s) URL")
    if not parts.path.endswith("/" + FALLBACK_PREFIX):
        raise NotConfigured(
            f"{FALLBACK_BASE_URL_ENV}={base!r} must end in /{FALLBACK_PREFIX}, the prefix the documents are put under"
        )
    return FallbackConfig(bucket, base)


def document(rule: Rule) -> bytes:
    from failover_did.fallback import static_cascade  # TwiML: only when something is published

    return static_cascade(rule).encode("utf-8")


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Publisher:
    """Puts, checks and deletes the fallback documents of one bucket."""

    def __init__(self, config: FallbackConfig, client: Any = None) -> None:
        self.config = config
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # An emulator at AWS_ENDPOINT_URL (the local stack's moto) is addressed path-style.
            style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
            self._client = boto3.client(
                "s3",
                config=Config(
                    s3={"addressing_style": style},
                    connect_timeout=5,
                    read_timeout=15,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        return self._client

    def url(self, key: str) -> str:
        return self.config.url(key)

    def publish(self, rule: Rule, key: str) -> None:
        from failover_did.fallback import CONTENT_TYPE, private_key

        body = document(rule)
        self.client.put_object(
            Bucket=self.config.bucket,
            Key=self.config.object_key(key),
            Body=body,
            ContentType=CONTENT_TYPE,
            CacheControl=CACHE_CONTROL,
            Metadata={DIGEST_METADATA: digest(body)},
        )
        # The same document by number, private, for the webhook to serve when DynamoDB fails.
        self.client.put_object(
            Bucket=self.config.bucket, Key=private_key(rule.number), Body=body, ContentType=CONTENT_TYPE
        )

    def is_current(self, rule: Rule, key: str) -> bool:
        """Whether the published object exists and is `rule`'s document (by its sha256 metadata)."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=self.config.object_key(key))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            # Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key.
            if code in ("404", "NoSuchKey", "NotFound", "403", "Forbidden", "AccessDenied"):
                return False
            raise
        return bool(head.get("Metadata", {}).get(DIGEST_METADATA) == digest(document(rule)))

    def delete(self, key: str, number: str) -> None:
        from failover_did.fallback import private_key

        self.delete_public(key)
        self.client.delete_object(Bucket=self.config.bucket, Key=private_key(number))

    def delete_public(self, key: str) -> None:
        self.client.delete_object(Bucket=self.config.bucket, Key=self.config.object_key(key))


@dataclass(frozen=True)
class FallbackResult:
    number: str
    action: str  # "published" | "republished" | "current" | "deleted" | "failed"
    url: str | None
    error: str | None = None


def publish_after_apply(
    changes: Sequence[Change],
    publisher: Publisher,
    read_stored: Callable[[Sequence[str]], Mapping[str, StoredRule]] | None = None,
    threads: int = PUBLISH_THREADS,
) -> list[FallbackResult]:
    """Bring the bucket in line with the table after `apply_rules`: each number the file names is read back
    and the rule *stored* is published (an apply that ran meanwhile is then not undone by ours). A failure
    is reported per number (the rules are written already); running the apply again repairs it. Numbers
    kept but not in the file are left alone; one deleted meanwhile by someone else has nothing to publish.
    Up to `threads` numbers are published at once."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    from failover_did.store.rules_store import stored_of

    read = read_stored or stored_of
    wanted = [c.number for c in changes if c.action in ("added", "changed", "unchanged", "deleted")]
    try:
        stored = read(wanted) if wanted else {}
    except PynamoDBException as error:
        why = f"the rules could not be read back to publish them: {error.msg}"
        return [FallbackResult(number, "failed", None, why) for number in wanted]

    def bring_in_line(change: Change) -> FallbackResult | None:
        now = stored.get(change.number)
        try:
            if change.action in ("added", "changed", "unchanged"):
                if now is None or now.fallback_key is None:
                    return None  # deleted by someone else since our write: their delete removed the document
                url = publisher.url(now.fallback_key)
                if change.action != "unchanged":
                    publisher.publish(now.rule, now.fallback_key)
                    return FallbackResult(change.number, "published", url)
                if publisher.is_current(now.rule, now.fallback_key):
                    return FallbackResult(change.number, "current", url)
                publisher.publish(now.rule, now.fallback_key)
                return FallbackResult(change.number, "republished", url)
            if change.action == "deleted" and change.fallback_key:
                url = publisher.url(change.fallback_key)
                if now is None:
                    publisher.delete(change.fallback_key, change.number)
                else:  # added again since: its private copy is the new rule's
                    publisher.delete_public(change.fallback_key)
                return FallbackResult(change.number, "deleted", url)
        except (ClientError, BotoCoreError) as error:
            key = change.fallback_key or (now.fallback_key if now else None)
            return FallbackResult(change.number, "failed", key and publisher.url(key), describe_error(error))
        return None

    work = [c for c in changes if c.action in ("added", "changed", "unchanged", "deleted")]
    if len(work) <= 1 or threads <= 1:
        outcomes = [bring_in_line(change) for change in work]
    else:
        _ = publisher.client  # made once, before the threads share it (a made boto3 client is thread-safe)
        with ThreadPoolExecutor(threads, thread_name_prefix="fallback-publish") as pool:
            outcomes = list(pool.map(bring_in_line, work))
    return [result for result in outcomes if result is not None]


def describe_error(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        info = response.get("Error", {})
        code, message = info.get("Code", ""), info.get("Message", "")
        if code or message:
            return f"{code}: {message}".strip(": ")
    return str(error)
