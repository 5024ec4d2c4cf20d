"""The local stack's AWS emulation writes DynamoDB answers as plain JSON (aws_emulation.serialise_results_directly),
not through moto's generic serializer: each answer must be what moto itself gives (here: moto in-process,
which keeps the generic one), for items with every attribute type, absent items, projections, pages,
counts, indexes, consumed capacity and batch reads (and the queries, which read one partition: see
aws_emulation.query_one_partition). Also: PynamoDB's sessions share one loader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws

from failover_did_cli.env import local_client
from failover_did_cli.local_stack import free_port, start_emulation

ITEMS = 30
Reads = list[tuple[str, dict[str, Any]]]


def seed(client: Any) -> None:
    client.create_table(
        TableName="reads",
        KeySchema=[{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "h", "AttributeType": "S"},
            {"AttributeName": "r", "AttributeType": "N"},
            {"AttributeName": "g", "AttributeType": "B"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(ITEMS):
        nested = [{"NULL": True}, {"BOOL": False}, {"N": "1.5"}, {"SS": ["p", "q"]}, {"NS": ["1", "2"]}]
        client.put_item(
            TableName="reads",
            Item={
                "h": {"S": "ab"[i % 3 == 1]},  # two partitions: a key's query answers with its own items only
                "r": {"N": str(i)},
                "g": {"B": bytes([i, 255, 0])},
                "bs": {"BS": [b"\x00\x01", b"\xff"]},
                "m": {"M": {"x": {"L": nested}}},
                "u": {"S": 'é\u2028"<>&'},
            },
        )


def reads(client: Any) -> Reads:
    """The read requests to compare, each answer without its ResponseMetadata."""
    key = {"h": {"S": "a"}, "r": {"N": "3"}}
    first = client.scan(TableName="reads", Limit=7)
    calls: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("get", lambda: client.get_item(TableName="reads", Key=key, ReturnConsumedCapacity="TOTAL")),
        ("get absent", lambda: client.get_item(TableName="reads", Key={"h": {"S": "a"}, "r": {"N": "99"}})),
        ("get projected", lambda: client.get_item(TableName="reads", Key=key, ProjectionExpression="g, m.x[1]")),
        (
            "query page",
            lambda: client.query(
                TableName="reads",
                KeyConditionExpression="h = :h",
                ExpressionAttributeValues={":h": {"S": "a"}},
                Limit=5,
                ReturnConsumedCapacity="INDEXES",
            ),
        ),
        (
            "query count",
            lambda: client.query(
                TableName="reads",
                KeyConditionExpression="h = :h",
                ExpressionAttributeValues={":h": {"S": "a"}},
                Select="COUNT",
            ),
        ),
        (
            "query index by binary",
            lambda: client.query(
                TableName="reads",
                IndexName="by-g",
                KeyConditionExpression="g = :g",
                ExpressionAttributeValues={":g": {"B": bytes([3, 255, 0])}},
            ),
        ),
        ("scan first page", lambda: first),
        (
            "scan next page filtered",
            lambda: client.scan(
                TableName="reads",
                ExclusiveStartKey=first["LastEvaluatedKey"],
                FilterExpression="r > :n",
                ExpressionAttributeValues={":n": {"N": "20"}},
            ),
        ),
        ("scan segment", lambda: client.scan(TableName="reads", Segment=0, TotalSegments=2)),
        (
            "batch get",
            lambda: client.batch_get_item(
                RequestItems={"reads": {"Keys": [key, {"h": {"S": "a"}, "r": {"N": "100"}}]}},
                ReturnConsumedCapacity="TOTAL",
            ),
        ),
    ]
    answers = []
    for name, call in calls:
        answer = dict(call())
        answer.pop("ResponseMetadata", None)
        answers.append((name, answer))
    return answers


def dynamodb(endpoint: str | None = None) -> Any:
    return local_client("dynamodb", endpoint)


@pytest.fixture
def emulation() -> Iterator[str]:
    port = free_port()
    process = start_emulation(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_each_read_answers_as_moto_itself_does(emulation: str) -> None:
    with mock_aws():
        client = dynamodb()
        seed(client)
        expected = reads(client)
    client = dynamodb(emulation)
    seed(client)
    got = reads(client)
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (name, answer), (_, want) in zip(got, expected, strict=True):
        assert answer == want, name
    assert got[0][1]["Item"]["g"] == {"B": bytes([3, 255, 0])}  # binary comes back as bytes, not base64 text


def test_the_tables_sessions_share_one_loader() -> None:
    from failover_did.store.tables import CallItem, EventItem, RuleItem, botocore_session

    loaders = {
        id(model._get_connection().connection.session.get_component("data_loader"))
        for model in (RuleItem, EventItem, CallItem)
    }
    loaders.add(id(botocore_session().get_component("data_loader")))
    assert len(loaders) == 1


def test_object_metadata_comes_back_as_s3_sends_it(emulation: str) -> None:
    """Names in lower case, as S3 sends them (the fallback's freshness check reads its `sha256`)."""

    def head(endpoint: str | None) -> dict[str, Any]:
        s3 = local_client("s3", endpoint)
        s3.create_bucket(Bucket="fallbacks")
        s3.put_object(Bucket="fallbacks", Key="k.xml", Body=b"<Response/>", Metadata={"sha256": "ab", "Two-Part": "c"})
        answer: dict[str, Any] = s3.head_object(Bucket="fallbacks", Key="k.xml")
        return answer

    with mock_aws():
        expected = head(None)["Metadata"]
    assert head(emulation)["Metadata"] == expected == {"sha256": "ab", "two-part": "c"}
