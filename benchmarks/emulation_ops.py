"""What one DynamoDB operation costs the local stack's AWS emulation (`python -m failover_did_cli.aws_emulation`,
moto in its own process): CPU seconds of the emulation's process per operation, read from /proc (Linux), so
the figure holds up better than wall time on a shared machine.

Two shapes the webhook sends on every call: an UpdateItem like the call log's (a dozen clauses, most of
them `if_not_exists`, ReturnValues ALL_NEW), and a three-item TransactWriteItems like a failover's, half of
them refused by their condition (rolled back), into a table already holding `--items` items; and a Query
of one key's latest items in that table, as the local stack's event log reads each number's events.

    .venv/bin/python benchmarks/emulation_ops.py [--updates 300] [--transactions 200] [--items 3000]
        [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from failover_did_cli.env import local_client
from failover_did_cli.local_stack import free_port, start_emulation


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table(db: Any, name: str) -> None:
    keys = [("k", "HASH"), ("s", "RANGE")]
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def failover(marker: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A failover's transaction: a once-per-call marker, the event, the month's count."""
    count = {"k": {"S": "+10"}, "s": {"S": "count#"}}
    return [
        {"Put": {"TableName": "markers", "Item": marker, "ConditionExpression": "attribute_not_exists(s)"}},
        {"Put": {"TableName": "events", "Item": {"k": {"S": "+10"}, "s": {"S": f"f{n:08}"}}}},
        {
            "Update": {
                "TableName": "events",
                "Key": count,
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--items", type=int, default=3000, help="items already in the transactions' table")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    process = start_emulation(port)
    try:
        db = local_client("dynamodb", f"http://127.0.0.1:{port}")
        table(db, "log")
        table(db, "events")
        table(db, "markers")
        for start in range(0, args.items, 25):
            batch = [
                {"PutRequest": {"Item": {"k": {"S": f"+1{n % 50}"}, "s": {"S": f"{n:08}"}, "d": {"S": "x" * 80}}}}
                for n in range(start, min(start + 25, args.items))
            ]
            db.batch_write_item(RequestItems={"events": batch})

        names = {f"#n{i}": f"f{i}" for i in range(12)}
        clauses = ", ".join(f"#n{i} = if_not_exists(#n{i}, :v{i})" for i in range(10)) + ", #n10 = :v10, #n11 = :v11"
        values = {f":v{i}": {"S": f"value {i}"} for i in range(12)}
        before = cpu_seconds(process.pid)
        for n in range(args.updates):
            db.update_item(
                TableName="log",
                Key={"k": {"S": f"CA{n % 100}"}, "s": {"S": "call"}},
                UpdateExpression="SET " + clauses,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        per_update = (cpu_seconds(process.pid) - before) / args.updates

        refused = 0
        before = cpu_seconds(process.pid)
        for n in range(args.transactions):
            marker = {"k": {"S": f"CA{n % (args.transactions // 2)}"}, "s": {"S": "failover#1"}}
            try:
                db.transact_write_items(TransactItems=failover(marker, n))
            except db.exceptions.TransactionCanceledException:
                refused += 1
        per_transaction = (cpu_seconds(process.pid) - before) / args.transactions
        before = cpu_seconds(process.pid)
        for n in range(args.queries):  # one number's latest events, as the local stack's event log reads them
            db.query(
                TableName="events",
                KeyConditionExpression="k = :k AND s >= :s",
                ExpressionAttributeValues={":k": {"S": f"+1{n % 50}"}, ":s": {"S": f"{args.items - 100:08}"}},
            )
        per_query = (cpu_seconds(process.pid) - before) / args.queries
        count = db.get_item(TableName="events", Key={"k": {"S": "+10"}, "s": {"S": "count#"}}, ConsistentRead=True)
        counted = int(count["Item"]["n"]["N"])
    finally:
        process.kill()
        process.wait(timeout=10)
    print(f"UpdateItem (12 clauses, ALL_NEW)   {per_update * 1000:6.2f} ms of emulation CPU each ({args.updates})")
    print(
        f"TransactWriteItems (3 items)       {per_transaction * 1000:6.2f} ms each, table of {args.items} items "
        f"({args.transactions}: {refused} refused and rolled back; count {counted}, "
        f"{'right' if counted == args.transactions - refused else 'WRONG'})"
    )
    items = args.items + args.transactions
    print(
        f"Query (one key's latest)           {per_query * 1000:6.2f} ms each, table of {items} items under 50 keys "
        f"({args.queries})"
    )
    return 0 if counted == args.transactions - refused else 1


if __name__ == "__main__":
    sys.exit(main())
