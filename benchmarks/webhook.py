"""Webhook cost: cold import of the Lambda module against its dependency floor, and warm in-process
latency per webhook with a cached rule. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/webhook.py [--runs 15] [--calls 4000]

Targets: cold import <= 1.25x the floor, twilio.rest never imported; warm incoming call p99 <= 1 ms (it
writes nothing). A Dial action writes the call log (one UpdateItem against moto in-process): no target.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from urllib.parse import urlencode

ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "TWILIO_AUTH_TOKEN": "bench-token",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
FLOOR = (
    "import boto3, pynamodb.models, twilio.twiml.voice_response, twilio.request_validator\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
)
WEBHOOK = "import failover_did.webhook.app\n"
TIMED = (
    "import sys, time\nt = time.perf_counter()\n{body}print(time.perf_counter() - t, 'twilio.rest' in sys.modules)\n"
)


def import_seconds(body: str) -> tuple[float, bool]:
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body)], env=ENV, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def cold_import(runs: int) -> None:
    import_seconds(FLOOR)  # warm the OS file cache once for both
    floor, webhook, rest_seen = [], [], False
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        floor.append(import_seconds(FLOOR)[0])
        seconds, rest = import_seconds(WEBHOOK)
        webhook.append(seconds)
        rest_seen |= rest
    f, w = statistics.median(floor), statistics.median(webhook)
    print(
        f"cold import, median of {runs}: floor {f * 1000:.0f} ms, webhook module {w * 1000:.0f} ms, "
        f"ratio {w / f:.2f} (target <= 1.25); twilio.rest imported: {rest_seen}"
    )


def warm_latency(calls: int) -> None:
    os.environ.update({k: v for k, v in ENV.items() if k not in os.environ or k.startswith(("AWS_", "TWILIO"))})
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    import boto3
    from moto import mock_aws
    from twilio.request_validator import RequestValidator

    from failover_did_cli import schema
    from failover_did_cli.apigw import LambdaContext, http_event

    with mock_aws():
        schema.create_tables(boto3.client("dynamodb"))
        from failover_did.rules.validate import parse_rules_yaml
        from failover_did.store.rules_store import apply_rules
        from failover_did.webhook.app import handler

        apply_rules(
            parse_rules_yaml(
                'numbers: {"+14155550100": {primary: {target: "sip:desk@pbx.example.com"},'
                ' failover: [{target: "+14155550111"}, {target: "sip:dr@dr.example.net", screen: true}]}}'
            )
        )
        host = "abc123.execute-api.us-east-1.amazonaws.com"
        validator = RequestValidator(ENV["TWILIO_AUTH_TOKEN"])

        def event(path: str, query: str, sid: str, **extra: str) -> dict[str, object]:
            params = {
                "CallSid": sid,
                "AccountSid": "AC" + "0" * 32,
                "From": "+14155550999",
                "To": "+14155550100",
                "CallStatus": "ringing",
                "Direction": "inbound",
                **extra,
            }
            url = f"https://{host}{path}" + (f"?{query}" if query else "")
            headers = {"Host": host, "X-Twilio-Signature": validator.compute_signature(url, params)}
            return http_event("POST", path, query=query, headers=headers, body=urlencode(params).encode())

        kinds = {
            "incoming call": lambda i: event("/voice", "", f"CA{i:032d}"),
            "dial answered": lambda i: event(
                "/voice/action", "tier=0&hop=1", f"CA{i:032d}", DialCallStatus="completed"
            ),
            # a failover writes its event and monthly count (one DynamoDB transaction, here moto in-process)
            "failover": lambda i: event("/voice/action", "tier=0&hop=1", f"CA{i:032d}", DialCallStatus="busy"),
        }
        prepared = {
            kind: [make(i) for i in range(calls if kind != "failover" else calls // 10)] for kind, make in kinds.items()
        }
        context = LambdaContext()
        sink = io.StringIO()
        from failover_did.observability import logger

        logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        with redirect_stdout(sink):  # logs and EMF still rendered, just not shown
            for kind in kinds:  # warm: first calls read DynamoDB, later ones the caches
                assert handler(prepared[kind][0], context)["statusCode"] == 200
            for kind, batch in prepared.items():
                for i, ev in enumerate(batch):
                    started = time.perf_counter()
                    result = handler(ev, context)
                    samples[kind].append(time.perf_counter() - started)
                    assert result["statusCode"] == 200
                    if i % 500 == 0:
                        sink.seek(0)
                        sink.truncate()
    if os.environ.get("BENCH_PROFILE"):
        return
    for kind, values in samples.items():
        values.sort()
        p50, p99 = values[len(values) // 2], values[int(len(values) * 0.99)]
        # /voice writes nothing; a Dial action writes the call log (one UpdateItem, here moto in-process) and a
        # failover also its event and count (one transaction).
        target = " (target p99 <= 1 ms)" if kind == "incoming call" else " (writes to DynamoDB; no target)"
        print(
            f"warm webhook, {kind}, {len(values)} calls, logs and metrics on: "
            f"p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms{target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    cold_import(args.runs)
    warm_latency(args.calls)


if __name__ == "__main__":
    main()
