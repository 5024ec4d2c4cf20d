"""How long the console's pages take, and how many AWS requests each makes, at 1,000 numbers: the real
handler in-process with moto's DynamoDB and Cognito (no network but loopback for the pool's keys). Seeds
1,000 rules in four statuses and the health of their destinations. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/console_pages.py [--numbers 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    TWILIO_AUTH_TOKEN="bench-token",
    POWERTOOLS_LOG_LEVEL="ERROR",
)
for name in ("AWS_ENDPOINT_URL", "FAILOVER_DID_LOCAL", "FAILOVER_DID_STACK", "PUBLIC_BASE_URL"):
    os.environ.pop(name, None)

PAGES = [
    ("/console/numbers", ""),
    ("/console/numbers", "page=10"),
    ("/console/numbers", "status=failing-over"),
    ("/console/numbers", "q=%2B1415555"),
    ("/console/numbers/%2B14155550003", ""),
    ("/console/alerts", ""),
    ("/console/missed", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import boto3
    import botocore.client
    import pytest
    from moto import mock_aws

    from failover_did_cli import schema
    from tests.integration.console import conftest as console
    from tests.integration.console.test_console_numbers import seed

    made: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        made.append(operation)
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
    keys = console.jwks_url.__wrapped__()  # type: ignore[attr-defined]
    with mock_aws():
        schema.create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        monkeypatch = pytest.MonkeyPatch()
        console.pool.__wrapped__(None, next(keys), monkeypatch)  # type: ignore[attr-defined]
        seed(args.numbers)
        browser = console.Browser()
        browser.sign_in(console.VIEWER)
        print(f"{args.numbers} numbers; each page {args.runs} times (median), AWS requests of one load")
        for path, query in PAGES:
            times = []
            for _ in range(args.runs):
                made.clear()
                start = time.perf_counter()
                page = browser.get(path, query)
                times.append(time.perf_counter() - start)
                assert page.status == 200, page.body[:300]
            shown = f"{path}?{query}" if query else path
            kinds = ", ".join(sorted(set(made)))
            print(f"  {shown:45} {statistics.median(times) * 1000:7.0f} ms  {len(made)} requests ({kinds})")
        monkeypatch.undo()


if __name__ == "__main__":
    main()
