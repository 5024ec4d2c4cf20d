"""Publishing the static fallback TwiML under moto (S3 + DynamoDB): `rules apply` puts one document per
number under an unguessable key kept across applies, deletes it with the number, never overwrites
someone else's edit, and publishes what the table holds (two applies at once leave the bucket and the
table agreeing)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
from click.testing import CliRunner

from failover_did.fallback import static_cascade
from failover_did.rules.validate import parse_rules_yaml
from failover_did.store import rules_store
from failover_did.store.rules_store import apply_rules, get_stored
from failover_did.store.tables import RuleItem
from failover_did_cli import env
from failover_did_cli.fallback_publish import FallbackConfig, Publisher, publish_after_apply
from failover_did_cli.main import cli
from failover_did_cli.rules_cmd import Applied, apply_and_publish

BUCKET = "failover-did-fallback-test"
BASE = f"https://{BUCKET}.s3.us-east-1.amazonaws.com/fallback/"
FALLBACK_ENV = {env.FALLBACK_BUCKET_ENV: BUCKET, env.FALLBACK_BASE_URL_ENV: BASE}

RULES = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: %(timeout)d}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sip:oncall@dr.example.net", screen: true}
    triggers: [timeout, busy, failed, "503"]
    final: {say: "Nobody is here.", voicemail: true}
  "+14155550200":
    primary: {target: "sip:sales@pbx.example.com", timeout: 25}
    failover:
      - {target: "+14155550222"}
"""
ONLY_100 = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
"""


@pytest.fixture
def s3(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in FALLBACK_ENV.items():
        monkeypatch.setenv(name, value)
    for name in (env.STACK_ENV, env.LOCAL_ENV):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client


def rules_file(tmp_path: Path, timeout: int = 15, text: str = RULES) -> Path:
    path = tmp_path / f"rules-{timeout}.yaml"
    path.write_text(text % {"timeout": timeout} if "%(timeout)d" in text else text)
    return path


def objects(s3: Any, prefix: str = "fallback/") -> dict[str, Any]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"]) for o in listing}


def key_of(number: str) -> str:
    stored = get_stored(number)
    assert stored is not None and stored.fallback_key
    return stored.fallback_key


def test_apply_publishes_each_number_as_xml(s3: Any, tmp_path: Path) -> None:
    applied = apply_and_publish(rules_file(tmp_path))
    assert [(f.number, f.action) for f in applied.fallbacks] == [
        ("+14155550100", "published"),
        ("+14155550200", "published"),
    ]
    stored = get_stored("+14155550100")
    assert stored is not None and stored.version == 1  # the key went in with the rule's own write
    key = key_of("+14155550100")
    assert len(key) == 32 and applied.fallback_of("+14155550100").url == f"{BASE}{key}.xml"  # type: ignore[union-attr]
    published = s3.get_object(Bucket=BUCKET, Key=f"fallback/{key}.xml")
    assert published["ContentType"] == "application/xml"
    assert published["CacheControl"] == "no-cache"
    body = published["Body"].read().decode()
    assert body == static_cascade(stored.rule)
    targets = [noun.text for dial in ET.fromstring(body).iter("Dial") for noun in dial]
    assert targets == ["sip:frontdesk@pbx.example.com", "+14155550111", "sip:oncall@dr.example.net"]
    assert set(objects(s3)) == {f"fallback/{key}.xml", f"fallback/{key_of('+14155550200')}.xml"}
    # the private copy by number, which the webhook serves when DynamoDB fails and nothing is cached
    private = objects(s3, "private/")
    assert set(private) == {"private/+14155550100.xml", "private/+14155550200.xml"}
    assert private["private/+14155550100.xml"]["Body"].read().decode() == body


def test_key_is_kept_when_the_rule_changes_and_the_document_follows(s3: Any, tmp_path: Path) -> None:
    apply_and_publish(rules_file(tmp_path, 15))
    key = key_of("+14155550100")
    applied = apply_and_publish(rules_file(tmp_path, 45))
    assert [c.action for c in applied.changes] == ["changed", "unchanged"]
    assert key_of("+14155550100") == key
    body = s3.get_object(Bucket=BUCKET, Key=f"fallback/{key}.xml")["Body"].read().decode()
    assert '<Dial answerOnBridge="true" timeout="45">' in body
    assert len(objects(s3)) == 2


def test_unchanged_rule_changes_nothing(s3: Any, tmp_path: Path) -> None:
    apply_and_publish(rules_file(tmp_path))
    before = {k: (o["ETag"], o["LastModified"]) for k, o in objects(s3).items()}
    versions = {n: get_stored(n).version for n in ("+14155550100", "+14155550200")}  # type: ignore[union-attr]
    keys = {n: key_of(n) for n in versions}
    applied = apply_and_publish(rules_file(tmp_path))
    assert [(c.action, f.action) for c, f in zip(applied.changes, applied.fallbacks, strict=True)] == [
        ("unchanged", "current"),
        ("unchanged", "current"),
    ]
    assert {k: (o["ETag"], o["LastModified"]) for k, o in objects(s3).items()} == before
    assert {n: get_stored(n).version for n in versions} == versions  # type: ignore[union-attr]
    assert {n: key_of(n) for n in versions} == keys


def test_unchanged_number_whose_object_is_missing_or_stale_is_published_again(s3: Any, tmp_path: Path) -> None:
    apply_and_publish(rules_file(tmp_path))
    key = key_of("+14155550100")
    s3.delete_object(Bucket=BUCKET, Key=f"fallback/{key}.xml")
    s3.put_object(Bucket=BUCKET, Key=f"fallback/{key_of('+14155550200')}.xml", Body=b"<Response/>")
    applied = apply_and_publish(rules_file(tmp_path))
    assert [f.action for f in applied.fallbacks] == ["republished", "republished"]
    assert len(objects(s3)) == 2
    for number in ("+14155550100", "+14155550200"):
        stored = get_stored(number)
        assert stored is not None
        body = s3.get_object(Bucket=BUCKET, Key=f"fallback/{key_of(number)}.xml")["Body"].read().decode()
        assert body == static_cascade(stored.rule)


def test_rule_stored_before_fallbacks_gets_a_key_once(s3: Any, tmp_path: Path) -> None:
    apply_rules(parse_rules_yaml(rules_file(tmp_path).read_text()))
    legacy = RuleItem.get("+14155550100", consistent_read=True)
    legacy.fallback_key = None
    legacy.save()  # version 2, no key: as written by an earlier release
    applied = apply_and_publish(rules_file(tmp_path))
    assert applied.fallback_of("+14155550100").action == "republished"  # type: ignore[union-attr]
    assert [c.action for c in applied.changes] == ["unchanged", "unchanged"]
    key = key_of("+14155550100")
    stored = get_stored("+14155550100")
    assert stored is not None and stored.version == 3  # the apply's one transaction gave it the key
    apply_and_publish(rules_file(tmp_path))
    assert key_of("+14155550100") == key and get_stored("+14155550100").version == 3  # type: ignore[union-attr]


def test_delete_and_prune_remove_the_object(s3: Any, tmp_path: Path) -> None:
    apply_and_publish(rules_file(tmp_path))
    key_100, key_200 = key_of("+14155550100"), key_of("+14155550200")
    kept = apply_and_publish(rules_file(tmp_path, text=ONLY_100))
    assert [(c.number, c.action) for c in kept.changes] == [("+14155550100", "changed"), ("+14155550200", "kept")]
    assert set(objects(s3)) == {f"fallback/{key_100}.xml", f"fallback/{key_200}.xml"}  # kept numbers keep theirs

    pruned = apply_and_publish(rules_file(tmp_path, text=ONLY_100), prune=True)
    assert pruned.fallback_of("+14155550200").action == "deleted"  # type: ignore[union-attr]
    assert set(objects(s3)) == {f"fallback/{key_100}.xml"}
    assert set(objects(s3, "private/")) == {"private/+14155550100.xml"}

    result = CliRunner().invoke(cli, ["rules", "delete", "+14155550100", "--yes"])
    assert result.exit_code == 0, result.output
    assert f"fallback: {BASE}{key_100}.xml deleted" in result.output
    assert objects(s3) == {} and objects(s3, "") == {}


def interleaved(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]) -> None:
    """The next apply reads the rules, then `meanwhile` runs to its end, then that apply goes on."""
    real_read = rules_store.read_snapshot

    def read_then_someone_else() -> rules_store.Snapshot:
        read = real_read()
        monkeypatch.setattr(rules_store, "read_snapshot", real_read)
        meanwhile()
        return read

    monkeypatch.setattr(rules_store, "read_snapshot", read_then_someone_else)


def assert_fallbacks_match_the_table(s3: Any) -> None:
    stored = list(rules_store.all_rules())
    assert set(objects(s3)) == {f"fallback/{s.fallback_key}.xml" for s in stored}
    for rule in stored:
        body = s3.get_object(Bucket=BUCKET, Key=f"fallback/{rule.fallback_key}.xml")["Body"].read().decode()
        assert body == static_cascade(rule.rule), rule.rule.number
        private = s3.get_object(Bucket=BUCKET, Key=f"private/{rule.rule.number}.xml")["Body"].read().decode()
        assert private == body


def test_two_applies_at_once_that_would_make_a_loop(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A -> B and B -> A, applied at once: the one that writes second is refused and writes nothing, the table
    holds no loop, and the published fallbacks are the table's."""
    a_to_b = rules_file(tmp_path, text='numbers:\n  "+14155550100": {primary: {target: "+14155550200"}}\n')
    b_to_a = tmp_path / "b-to-a.yaml"
    b_to_a.write_text('numbers:\n  "+14155550200": {primary: {target: "+14155550100"}}\n')
    second: list[Applied] = []
    interleaved(monkeypatch, lambda: second.append(apply_and_publish(b_to_a)))
    with pytest.raises(click.ClickException, match="the rules were changed by someone else while this ran; run it"):
        apply_and_publish(a_to_b)
    assert [(c.number, c.action) for c in second[0].changes] == [("+14155550200", "added")]
    assert get_stored("+14155550100") is None
    stored = get_stored("+14155550200")
    assert stored is not None and stored.rule.primary.target == "+14155550100"
    assert_fallbacks_match_the_table(s3)
    with pytest.raises(SystemExit):  # run again: the loop is seen now
        apply_and_publish(a_to_b)


def test_edit_between_read_and_write_is_refused_and_its_key_kept(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_and_publish(rules_file(tmp_path, 10))
    key = key_of("+14155550100")
    interleaved(monkeypatch, lambda: apply_and_publish(rules_file(tmp_path, 30)))
    with pytest.raises(click.ClickException, match="changed by someone else"):
        apply_and_publish(rules_file(tmp_path, 20))
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 30 and stored.fallback_key == key
    assert_fallbacks_match_the_table(s3)


def test_delete_between_read_and_write_refuses_the_apply(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_and_publish(rules_file(tmp_path, 10))
    deleted: list[Any] = []
    interleaved(
        monkeypatch, lambda: deleted.append(CliRunner().invoke(cli, ["rules", "delete", "+14155550200", "--yes"]))
    )
    with pytest.raises(click.ClickException, match="changed by someone else"):
        apply_and_publish(rules_file(tmp_path, 20))
    assert deleted[0].exit_code == 0, deleted[0].output
    assert get_stored("+14155550200") is None
    assert_fallbacks_match_the_table(s3)


def test_what_is_published_is_what_is_stored_when_publishing(s3: Any, tmp_path: Path) -> None:
    """An apply that lands between another apply's write and its publishing is not undone in the bucket."""
    changes = apply_rules(parse_rules_yaml(rules_file(tmp_path, 10).read_text()))
    apply_rules(parse_rules_yaml(rules_file(tmp_path, 30).read_text()))  # lands before the first one publishes
    results = publish_after_apply(changes, Publisher(FallbackConfig(BUCKET, BASE)))
    assert [r.action for r in results] == ["published", "published"]
    stored = get_stored("+14155550100")
    assert stored is not None and stored.rule.primary.timeout == 30
    assert_fallbacks_match_the_table(s3)


def test_a_number_deleted_before_publishing_gets_no_document(s3: Any, tmp_path: Path) -> None:
    changes = apply_rules(parse_rules_yaml(rules_file(tmp_path).read_text()))
    rules_store.delete_rule("+14155550200")
    results = publish_after_apply(changes, Publisher(FallbackConfig(BUCKET, BASE)))
    assert [(r.number, r.action) for r in results] == [("+14155550100", "published")]
    assert_fallbacks_match_the_table(s3)


def test_cli_apply_prints_fallback_urls_and_show_prints_one(s3: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["rules", "apply", str(rules_file(tmp_path))])
    assert first.exit_code == 0, first.output
    key = key_of("+14155550100")
    assert f"+ +14155550100 added (version 1)\n  fallback: {BASE}{key}.xml\n" in first.output
    again = runner.invoke(cli, ["rules", "apply", str(rules_file(tmp_path))])
    assert again.exit_code == 0 and "fallback" not in again.output  # nothing to publish
    shown = runner.invoke(cli, ["rules", "show", "+14155550100"])
    assert shown.exit_code == 0 and f"# fallback: {BASE}{key}.xml\n" in shown.output
    s3.delete_object(Bucket=BUCKET, Key=f"fallback/{key}.xml")
    shown = runner.invoke(cli, ["rules", "show", "+14155550100"])
    assert "(missing or out of date: run `rules apply`)" in shown.output


def test_cli_apply_without_a_bucket_applies_and_says_why(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(env.FALLBACK_BUCKET_ENV)
    monkeypatch.delenv(env.FALLBACK_BASE_URL_ENV)
    result = CliRunner().invoke(cli, ["rules", "apply", str(rules_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output and "fallback:" not in result.output
    assert "no fallback published: FALLBACK_BUCKET is not set" in result.output
    assert objects(s3) == {}
    shown = CliRunner().invoke(cli, ["rules", "show", "+14155550100"])
    assert "# fallback: none (FALLBACK_BUCKET is not set" in shown.output


def test_cli_apply_with_an_unreachable_bucket_exits_1_and_the_next_apply_repairs(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env.FALLBACK_BUCKET_ENV, "no-such-bucket-here")
    result = CliRunner().invoke(cli, ["rules", "apply", str(rules_file(tmp_path))])
    assert result.exit_code == 1
    assert "fallback: NOT published: NoSuchBucket" in result.output
    assert "the rules were applied, but 2 fallback document(s) could not be published" in result.output
    assert get_stored("+14155550100") is not None
    monkeypatch.setenv(env.FALLBACK_BUCKET_ENV, BUCKET)
    repaired = CliRunner().invoke(cli, ["rules", "apply", str(rules_file(tmp_path))])
    assert repaired.exit_code == 0 and repaired.output.count("published again") == 2
    assert len(objects(s3)) == 2


def test_applied_reports_nothing_for_kept_numbers(s3: Any, tmp_path: Path) -> None:
    apply_and_publish(rules_file(tmp_path))
    applied: Applied = apply_and_publish(rules_file(tmp_path, text=ONLY_100))
    assert applied.fallback_of("+14155550200") is None
    assert os.environ[env.FALLBACK_BUCKET_ENV] == BUCKET


def test_rules_that_cannot_be_read_back_are_reported_not_published(s3: Any, tmp_path: Path) -> None:
    from pynamodb.exceptions import GetError

    changes = apply_rules(parse_rules_yaml(rules_file(tmp_path).read_text()))

    def unreachable(numbers: Any) -> Any:
        raise GetError("Failed to batch get items: timed out")

    results = publish_after_apply(changes, Publisher(FallbackConfig(BUCKET, BASE)), read_stored=unreachable)
    assert [(r.number, r.action) for r in results] == [("+14155550100", "failed"), ("+14155550200", "failed")]
    assert "could not be read back" in (results[0].error or "") and objects(s3) == {}
