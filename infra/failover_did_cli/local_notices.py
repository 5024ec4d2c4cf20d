"""The local stack's notices: the NotifyTopic in moto, with an SQS queue subscribed in place of people, and
a loop that prints each missed-call notice SNS delivered as one line and runs the digest flush the deployed
stack runs every minute. The webhook publishes exactly as in AWS; only the recipient is a queue."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from failover_did.alerts.wording import one_line
from failover_did_cli.env import LOCAL_NOTIFY_TOPIC

SINK_QUEUE = "failover-did-notices"
FLUSH_SECONDS = 10.0


@dataclass(frozen=True)
class Sink:
    topic_arn: str
    queue_url: str


def create(endpoint: str) -> Sink:
    """The topic and the queue that reads everything published on it."""
    import boto3

    sns = boto3.client("sns", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    topic_arn = sns.create_topic(Name=LOCAL_NOTIFY_TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=SINK_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Sink(topic_arn, queue_url)


def line(envelope: dict[str, Any]) -> str | None:
    """`notice: missed call from A to B: how it ended[, the recording]` for a missed-call notice as an SQS
    subscriber receives it (the subject and the email text), else None."""
    attributes = envelope.get("MessageAttributes") or {}
    if (attributes.get("notice") or {}).get("Value") != "missed-call":
        return None
    subject = one_line(envelope.get("Subject"), 100)
    fields = {}
    for text in str(envelope.get("Message") or "").splitlines():
        name, sep, value = text.partition(":")
        if sep and name in ("How", "Recording"):
            fields[name] = one_line(value, 300)
    parts = [subject[:1].lower() + subject[1:], *(fields[k] for k in ("How", "Recording") if k in fields)]
    return "notice: " + ": ".join(parts[:2]) + (f" {parts[2]}" if len(parts) > 2 else "")


@lru_cache(maxsize=2)
def _sqs(endpoint: str) -> Any:
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint)  # made once: a new client costs tens of ms of CPU


def drain(endpoint: str, sink: Sink) -> list[str]:
    """The notice lines of every message waiting in the queue (deleted once read)."""
    sqs = _sqs(endpoint)
    lines: list[str] = []
    while True:
        received = sqs.receive_message(QueueUrl=sink.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = received.get("Messages", [])
        if not messages:
            return lines
        for message in messages:
            try:
                text = line(json.loads(message["Body"]))
            except ValueError:
                text = None
            if text:
                lines.append(text)
            sqs.delete_message(QueueUrl=sink.queue_url, ReceiptHandle=message["ReceiptHandle"])


def loop(
    endpoint: str, sink: Sink, echo: Callable[[str], None], stopping: Any, lock: Any, interval: float = 1.0
) -> None:
    """Until `stopping` is set: print notices as they arrive, flush due digests every FLUSH_SECONDS."""
    from failover_did.notices.missed import flush

    flushed = 0.0
    while not stopping.wait(interval):
        try:
            if time.monotonic() - flushed >= FLUSH_SECONDS:
                flushed = time.monotonic()
                with lock:
                    flush(datetime.now(UTC))
            for text in drain(endpoint, sink):
                echo(f"{time.strftime('%H:%M:%S')} {text}")
        except Exception as error:  # keep going; say what went wrong
            echo(f"{time.strftime('%H:%M:%S')} notices unreadable: {error}")
