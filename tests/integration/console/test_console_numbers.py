"""The Numbers page at 1,000 numbers: every number once across the pages, filtered by status and by
number prefix, each with its status and its tiers' health, in a handful of requests whatever the count."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from failover_did.health.hysteresis import DOWN, UP, TargetHealth
from failover_did.store import health_store
from failover_did.store.tables import RuleItem
from tests.integration.console.conftest import VIEWER, Browser, Pool

COUNT = 1000
DEAD = "sip:desk@dead.example.com"
LIVE = "sip:desk@pbx.example.com"


def seed(count: int) -> dict[str, str]:
    """`count` rules, a quarter in each status; returns number -> expected status."""
    expected: dict[str, str] = {}
    with RuleItem.batch_write() as batch:
        for i in range(count):
            number = f"+1{415 if i % 2 else 212}555{i:04d}"
            kind = i % 4
            primary = DEAD if kind == 3 else LIVE
            failover = [] if kind == 0 else [{"target": "sip:other@pbx.example.com" if kind == 1 else "+16505550100"}]
            doc = {"primary": {"target": primary, "timeout": 20}, "failover": failover}
            batch.save(RuleItem(number, rule=doc, updated_at=datetime.now(UTC), fallback_key="k" * 32))
            expected[number] = ["Unprotected", "At risk", "Protected", "Failing over"][kind]
    now = datetime.now(UTC)

    def mark(state: str, reason: str) -> Any:
        def fold(health: TargetHealth) -> tuple[TargetHealth, None]:
            return replace(
                health,
                state=state,
                reason=reason,
                checked_at=f"{now:%Y-%m-%dT%H:%M:%SZ}",
                since=f"{now:%Y-%m-%dT%H:%M:%SZ}",
                reached_at=f"{now:%Y-%m-%dT%H:%M:%SZ}",
            ), None

        return fold

    health_store.record(DEAD, mark(DOWN, "503"), now)
    health_store.record(LIVE, mark(UP, "200"), now)
    return expected


@pytest.fixture
def many(pool: Pool, aws: Any) -> tuple[Browser, dict[str, str]]:
    expected = seed(COUNT)
    b = Browser()
    assert b.sign_in(VIEWER).status == 303
    return b, expected


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS API call made (through botocore, as PynamoDB and boto3 both do)."""
    import botocore.client

    made: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        made.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    return made


def rows(b: Browser, query: str) -> tuple[dict[str, str], Any]:
    page = b.get("/console/numbers", query)
    assert page.status == 200, page.body
    html = page.html
    table = html.by_id("numbers")
    assert table is not None
    found = {
        tr.attrs["data-number"]: tr.one("td", class_="status").text
        for tr in table.all("tr")
        if "data-number" in tr.attrs
    }
    return found, html


def test_every_number_once_across_the_pages_with_its_status(many: tuple[Browser, dict[str, str]]) -> None:
    b, expected = many
    seen: dict[str, str] = {}
    query = ""
    pages = 0
    while True:
        found, html = rows(b, query)
        assert not set(found) & set(seen)
        seen.update(found)
        pages += 1
        following = html.all("a", rel="next")
        if not following:
            break
        query = following[0].attrs["href"].partition("?")[2]
        assert pages < 30
    assert pages == 20  # 50 a page
    assert seen == expected
    assert list(seen) == sorted(seen)
    _, html = rows(b, "page=20")
    assert html.all("a", rel="prev") and not html.all("a", rel="next")


def test_the_page_shows_each_tiers_health_in_the_status_words(many: tuple[Browser, dict[str, str]]) -> None:
    b, _ = many
    _, html = rows(b, "q=%2B14155550003")
    row = html.one("tr", data_number="+14155550003")
    assert row.one("td", class_="status").text == "Failing over"
    health = [e.text for e in row.all(class_="health")]
    assert health[0].startswith("DOWN since") and "(503)" in health[0]
    assert health[1] == "not probed"  # a phone number without a health URL


@pytest.mark.parametrize(
    "status,word",
    [
        ("protected", "Protected"),
        ("at-risk", "At risk"),
        ("failing-over", "Failing over"),
        ("unprotected", "Unprotected"),
    ],
)
def test_filter_by_status(many: tuple[Browser, dict[str, str]], status: str, word: str) -> None:
    b, _ = many
    found, html = rows(b, f"status={status}")
    assert len(found) == 50 and set(found.values()) == {word}
    assert f"{COUNT // 4} number(s)" in html.one(class_="summary").text
    following = html.one("a", rel="next").attrs["href"]
    assert f"status={status}" in following  # the filter is kept from page to page


@pytest.mark.parametrize("q", ["%2B1415555", "1415555", "%2B14155550"])
def test_search_by_number_prefix(many: tuple[Browser, dict[str, str]], q: str) -> None:
    b, expected = many
    prefix = "+" + q.replace("%2B", "").lstrip("+")
    found, html = rows(b, f"q={q}&status=protected")
    wanted = sorted(n for n, s in expected.items() if n.startswith(prefix) and s == "Protected")
    assert list(found) == wanted[:50]
    total = int(re.match(r"(\d+) number", html.one(class_="summary").text).group(1))  # type: ignore[union-attr]
    assert total == len(wanted)


def test_a_page_takes_a_handful_of_requests_at_1000_numbers(
    many: tuple[Browser, dict[str, str]], requests: list[str]
) -> None:
    b, _ = many
    rows(b, "")
    first = list(requests)
    requests.clear()
    rows(b, "page=7&status=protected")
    assert len(first) <= 6, first
    assert len(requests) <= 6, requests
