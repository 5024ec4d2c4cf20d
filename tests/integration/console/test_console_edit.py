"""A number's rule edited in the console: the one validator's messages beside their fields, the save with
the optimistic lock and an audit event naming the console user, refused concurrent edits, tiers added,
removed and reordered, deletion with confirmation, new numbers; viewers and forms without the CSRF token
refused; a rule's text shown as text."""

from __future__ import annotations

from typing import Any

import pytest

from failover_did.rules.validate import parse_rules_yaml
from failover_did.store.events import events_of
from failover_did.store.rules_store import apply_rules, get_stored
from tests.integration.console.conftest import ADMIN, Browser, Pool
from tests.integration.console.html import Element

NUMBER = "+14155550100"
PATH = "/console/numbers/%2B14155550100"


def form_fields(html: Element) -> dict[str, str]:
    """What a browser would post for form#rule as shown (checked boxes only), without the action."""
    form = html.by_id("rule")
    assert form is not None
    fields: dict[str, str] = {}
    for e in form.walk():
        name = e.attrs.get("name")
        if not name or e.tag == "button":
            continue
        if e.tag == "input" and e.attrs.get("type") == "checkbox":
            if "checked" in e.attrs:
                fields[name] = e.attrs.get("value", "on")
        elif e.tag == "textarea":
            fields[name] = "".join(c for c in e.children if isinstance(c, str))
        elif e.tag == "input":
            fields[name] = e.attrs.get("value", "")
    return fields


def open_form(b: Browser, path: str = PATH) -> dict[str, str]:
    page = b.get(f"{path}/edit")
    assert page.status == 200, page.body
    return form_fields(page.html)


def field_errors(html: Element, name: str) -> list[str]:
    holder = html.one(data_field=name)
    return [e.text for e in holder.all(class_="field-error")]


def test_the_form_shows_the_stored_rule(admin: Browser) -> None:
    fields = open_form(admin)
    assert fields["primary_target"] == "sip:frontdesk@pbx.example.com"
    assert fields["primary_timeout"] == "15"
    assert fields["tier_target_1"] == "+14155550111" and fields["tier_timeout_1"] == "20"
    assert fields["tier_target_2"] == "sip:oncall@dr.example.net" and fields["tier_screen_2"] == "1"
    assert fields["sip_triggers"] == "503"
    assert fields["final_say"] == "Nobody is here." and fields["final_voicemail"] == "1"
    assert fields["version"] == str(get_stored(NUMBER).version)  # type: ignore[union-attr]


def test_an_invalid_edit_shows_the_validators_message_at_the_field_and_saves_nothing(admin: Browser) -> None:
    before = get_stored(NUMBER)
    fields = open_form(admin)
    fields.update(primary_timeout="3", tier_target_1="+1999", final_say="", monthly_failover_budget="lots")
    page = admin.post(f"{PATH}/edit", {**fields, "action": "save"})
    assert page.status == 400
    html = page.html
    assert any("from 5 to 600" in m for m in field_errors(html, "primary_timeout"))
    assert field_errors(html, "tier_target_1")
    assert any("non-empty" in m for m in field_errors(html, "final_say"))
    assert any("whole number" in m for m in field_errors(html, "monthly_failover_budget"))
    assert field_errors(html, "tier_target_2") == []
    assert html.input_value("primary_timeout") == "3"  # what was typed stays in the form
    assert get_stored(NUMBER) == before
    assert not [e for e in events_of(NUMBER) if e.kind == "rule-changed"]


def test_a_valid_edit_is_saved_with_an_audit_event_and_the_status_is_fresh(admin: Browser) -> None:
    fields = open_form(admin)
    version = int(fields["version"])
    # the failover tiers on the primary's host only: the status must turn to At risk at once
    fields.update(tier_target_1="sip:backup@pbx.example.com", tier_target_2="sip:other@pbx.example.com")
    fields["tier_timeout_1"] = "25"
    page = admin.post(f"{PATH}/edit", {**fields, "action": "save"})
    assert page.status == 303, page.body
    assert page.location == f"{PATH}?saved=1&warn=fallback-unset"  # no fallback bucket in this test
    stored = get_stored(NUMBER)
    assert stored is not None and stored.version == version + 1
    assert [t.target for t in stored.rule.tiers][1:] == ["sip:backup@pbx.example.com", "sip:other@pbx.example.com"]
    assert stored.rule.tiers[1].timeout == 25
    audit = [e for e in events_of(NUMBER) if e.kind == "rule-changed"]
    assert len(audit) == 1
    assert audit[0].detail["by"] == ADMIN and audit[0].detail["action"] == "changed"
    assert any("failover[0].target" in line for line in audit[0].detail["diff"])
    shown = admin.get(page.location).html
    assert shown.by_id("status").text == "At risk"  # type: ignore[union-attr]
    assert "Saved" in shown.one(class_="notice").text


def test_an_edit_after_someone_elses_save_is_refused_and_overwrites_nothing(admin: Browser) -> None:
    fields = open_form(admin)
    theirs = parse_rules_yaml(
        'numbers:\n  "+14155550100":\n    primary: {target: "sip:theirs@pbx.example.com"}\n'
        '    failover: [{target: "+14155550111"}]\n'
    )
    apply_rules(theirs)  # someone else saves while the form is open
    fields["final_say"] = "Mine."
    page = admin.post(f"{PATH}/edit", {**fields, "action": "save"})
    assert page.status == 400
    assert "changed by someone else since you opened it" in page.html.one(class_="error").text
    stored = get_stored(NUMBER)
    assert stored is not None and stored.rule.primary.target == "sip:theirs@pbx.example.com"
    assert stored.rule.final.say != "Mine."


def test_a_script_in_the_final_message_is_shown_as_text(admin: Browser) -> None:
    fields = open_form(admin)
    fields["final_say"] = "<script>alert('x')</script> Sorry & goodbye"
    assert admin.post(f"{PATH}/edit", {**fields, "action": "save"}).status == 303
    assert get_stored(NUMBER).rule.final.say.startswith("<script>")  # type: ignore[union-attr]
    for path in (PATH, f"{PATH}/edit", "/console/alerts"):
        body = admin.get(path).body
        assert "<script" not in body, path
        assert "&lt;script&gt;" in body, path


def test_tiers_are_added_removed_and_reordered_without_saving(admin: Browser) -> None:
    before = get_stored(NUMBER)
    fields = open_form(admin)
    added = admin.post(f"{PATH}/edit", {**fields, "action": "add_tier"}).html
    assert added.input_value("tier_target_3") == ""
    moved = form_fields(admin.post(f"{PATH}/edit", {**fields, "action": "up_tier_2"}).html)
    assert moved["tier_target_1"] == "sip:oncall@dr.example.net" and moved["tier_screen_1"] == "1"
    assert moved["tier_target_2"] == "+14155550111" and "tier_screen_2" not in moved
    removed = form_fields(admin.post(f"{PATH}/edit", {**moved, "action": "remove_tier_1"}).html)
    assert removed["tier_target_1"] == "+14155550111" and "tier_target_2" not in removed
    assert get_stored(NUMBER) == before
    assert admin.post(f"{PATH}/edit", {**removed, "action": "save"}).status == 303
    stored = get_stored(NUMBER)
    assert stored is not None and [t.target for t in stored.rule.failover] == ["+14155550111"]


def test_a_blank_added_tier_is_left_out(admin: Browser) -> None:
    fields = open_form(admin)
    added = form_fields(admin.post(f"{PATH}/edit", {**fields, "action": "add_tier"}).html)
    assert admin.post(f"{PATH}/edit", {**added, "action": "save"}).status == 303
    assert len(get_stored(NUMBER).rule.failover) == 2  # type: ignore[union-attr]


def test_a_viewer_sees_no_controls_and_every_change_is_403(viewer: Browser) -> None:
    before = get_stored(NUMBER)
    html = viewer.get(PATH).html
    assert html.by_id("status") is not None
    for control in ("edit", "delete", "drill"):
        assert html.by_id(control) is None
    assert "Add a number" not in viewer.get("/console/numbers").body
    csrf = viewer.csrf()
    assert viewer.get(f"{PATH}/edit").status == 403
    assert viewer.get(f"{PATH}/delete").status == 403
    for path, fields in (
        (f"{PATH}/edit", {"csrf": csrf, "primary_target": "+14155550999", "action": "save", "version": "1"}),
        (f"{PATH}/delete", {"csrf": csrf, "confirm": "delete"}),
        (f"{PATH}/drill", {"csrf": csrf}),
        ("/console/new", {"csrf": csrf, "number": "+14155550300", "primary_target": "+14155550999"}),
    ):
        assert viewer.post(path, fields).status == 403, path
    assert get_stored(NUMBER) == before
    assert get_stored("+14155550300") is None


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "forged"])
def test_a_post_without_a_valid_csrf_token_is_403(admin: Browser, csrf: str | None) -> None:
    before = get_stored(NUMBER)
    fields = {**open_form(admin), "action": "save", "final_say": "Changed."}
    fields.pop("csrf")
    if csrf is not None:
        fields["csrf"] = csrf
    assert admin.post(f"{PATH}/edit", fields).status == 403
    deletion = {"confirm": "delete"} | ({"csrf": csrf} if csrf is not None else {})
    assert admin.post(f"{PATH}/delete", deletion).status == 403
    assert get_stored(NUMBER) == before


def test_another_sessions_csrf_token_is_refused(admin: Browser, pool: Any) -> None:
    other = Browser()
    other.sign_in(ADMIN)  # the same user, another session: another token
    token = other.csrf()
    assert token != admin.csrf()
    assert admin.post(f"{PATH}/delete", {"csrf": token, "confirm": "delete"}).status == 403
    assert get_stored(NUMBER) is not None


def test_delete_asks_first_then_deletes_with_an_audit_event(admin: Browser) -> None:
    number_page = admin.get(PATH).html
    delete_form = number_page.by_id("delete")
    assert delete_form is not None and delete_form.attrs["method"] == "get"
    confirm = admin.get(f"{PATH}/delete")
    assert confirm.status == 200 and confirm.html.by_id("confirm-delete") is not None
    assert get_stored(NUMBER) is not None  # asking deletes nothing
    assert admin.post(f"{PATH}/delete", {"csrf": admin.csrf()}).status == 303  # no confirmation: asks again
    assert get_stored(NUMBER) is not None
    token = confirm.html.input_value("csrf") or ""
    done = admin.post(f"{PATH}/delete", {"csrf": token, "confirm": "delete"})
    assert done.status == 303 and done.location is not None and done.location.startswith("/console/numbers")
    assert get_stored(NUMBER) is None
    audit = [e for e in events_of(NUMBER) if e.kind == "rule-changed"]
    assert [(e.detail["action"], e.detail["by"]) for e in audit] == [("deleted", ADMIN)]
    listed = admin.get(done.location).html
    assert listed.all("tr", data_number=NUMBER) == []
    assert NUMBER in listed.one(class_="notice").text
    assert admin.get(PATH).status == 404


def test_add_a_number(admin: Browser) -> None:
    page = admin.get("/console/new")
    assert page.status == 200
    fields = form_fields(page.html)
    fields.update(number="+14155550300", primary_target="sip:desk@pbx.example.org", tier_target_1="+14155550333")
    done = admin.post("/console/new", {**fields, "action": "save"})
    assert done.status == 303, done.body
    stored = get_stored("+14155550300")
    assert stored is not None and [t.target for t in stored.rule.tiers] == ["sip:desk@pbx.example.org", "+14155550333"]
    assert [e.detail["action"] for e in events_of("+14155550300") if e.kind == "rule-changed"] == ["added"]
    assert admin.get("/console/numbers/%2B14155550300").html.by_id("status").text == "Protected"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "number,expected",
    [("+14155550100", "already has a rule"), ("14155", "E.164"), ("", "E.164"), ("sip:a@b.example.com", "E.164")],
)
def test_a_new_number_that_cannot_be_added_is_named_at_its_field(admin: Browser, number: str, expected: str) -> None:
    before = get_stored("+14155550100")
    fields = form_fields(admin.get("/console/new").html)
    fields.update(number=number, primary_target="sip:desk@pbx.example.org", tier_target_1="+14155550333")
    page = admin.post("/console/new", {**fields, "action": "save"})
    assert page.status == 400
    messages = field_errors(page.html, "number")
    assert messages and any(expected in m for m in messages), messages
    assert get_stored("+14155550100") == before


def test_a_loop_to_a_routed_number_is_refused_at_the_tier(admin: Browser) -> None:
    fields = open_form(admin)
    fields["tier_target_1"] = "+14155550200"  # routed by failover-did itself
    page = admin.post(f"{PATH}/edit", {**fields, "action": "save"})
    assert page.status == 400
    assert any("loop" in m for m in field_errors(page.html, "tier_target_1"))


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"action=save&" + b"&".join(b"f%d=1" % i for i in range(400)), "application/x-www-form-urlencoded"),
        (b"final_say=" + b"a" * 70_000, "application/x-www-form-urlencoded"),
        (b"action=explode", "application/x-www-form-urlencoded"),
        (b"tier_target_999=x&action=save", "application/x-www-form-urlencoded"),
        (b"final_say=%ff%fe&action=save", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b'{"final_say": "x"}', "application/json"),
    ],
)
def test_garbage_gets_400_with_a_message_never_a_5xx(admin: Browser, body: bytes, content_type: str) -> None:
    before = get_stored(NUMBER)
    csrf = admin.csrf()
    joined = body if content_type != "application/x-www-form-urlencoded" else body + b"&csrf=" + csrf.encode()
    page = admin.request("POST", f"{PATH}/edit", body=joined, headers={"Content-Type": content_type})
    assert page.status in (400, 403), page.body
    assert page.html.one(class_="error").text
    assert "Traceback" not in page.body
    assert get_stored(NUMBER) == before


@pytest.mark.parametrize(
    "path,query",
    [
        ("/console/numbers", "status=everything"),
        ("/console/numbers", "q=abc"),
        ("/console/numbers", "page=-1"),
        ("/console/numbers", "page=99999999999999"),
        ("/console/alerts", "kind=<b>"),
        ("/console/alerts", "from=yesterday"),
        ("/console/alerts", "from=2026-12-01&to=2026-11-01"),
        ("/console/missed", "number=%2B1%27"),
        ("/console/numbers/not-a-number", ""),
        ("/console/numbers/%2B19995550000", ""),
    ],
)
def test_bad_filters_and_unknown_numbers_get_a_message(admin: Browser, path: str, query: str) -> None:
    page = admin.get(path, query)
    assert page.status in (400, 404)
    assert page.html.one(class_="error").text
    assert "<b>" not in page.body


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, aws: Any) -> Any:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="fallback-bucket")
    monkeypatch.setenv("FALLBACK_BUCKET", "fallback-bucket")
    monkeypatch.setenv("FALLBACK_BASE_URL", "https://fallback-bucket.s3.amazonaws.com/fallback/")
    return s3


def test_a_save_publishes_the_static_fallback_and_a_delete_removes_it(admin: Browser, bucket: Any) -> None:
    fields = open_form(admin)
    fields["tier_target_1"] = "+14155550177"
    assert admin.post(f"{PATH}/edit", {**fields, "action": "save"}).location == f"{PATH}?saved=1"
    stored = get_stored(NUMBER)
    assert stored is not None and stored.fallback_key
    key = f"fallback/{stored.fallback_key}.xml"
    document = bucket.get_object(Bucket="fallback-bucket", Key=key)["Body"].read().decode()
    assert "+14155550177" in document  # the saved rule's cascade, for when DynamoDB cannot answer
    confirm = admin.get(f"{PATH}/delete").html.input_value("csrf") or ""
    done = admin.post(f"{PATH}/delete", {"csrf": confirm, "confirm": "delete"})
    assert done.location == "/console/numbers?deleted=%2B14155550100"
    assert "Contents" not in bucket.list_objects_v2(Bucket="fallback-bucket", Prefix=key)


def test_a_fallback_that_cannot_be_published_is_said_on_the_page(
    admin: Browser, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALLBACK_BUCKET", "no-such-bucket")
    monkeypatch.setenv("FALLBACK_BASE_URL", "https://no-such-bucket.s3.amazonaws.com/fallback/")
    fields = open_form(admin)
    fields["tier_target_1"] = "+14155550177"
    done = admin.post(f"{PATH}/edit", {**fields, "action": "save"})
    assert done.status == 303 and "warn=fallback" in (done.location or "")
    assert get_stored(NUMBER).rule.tiers[1].target == "+14155550177"  # type: ignore[union-attr]
    page = admin.get(done.location or "").html
    assert "static fallback" in " ".join(e.text for e in page.all(class_="error"))


def test_a_removed_admin_is_signed_out_before_changing_anything(admin: Browser, pool: Pool) -> None:
    """`failover-did console remove-user` takes effect on the next admin page, not when the ID token expires."""
    from failover_did_cli.console_users import remove_user

    fields = open_form(admin)
    before = get_stored(NUMBER)
    remove_user(pool.cognito, pool.id, ADMIN)
    page = admin.post(f"{PATH}/edit", {**fields, "tier_timeout_1": "25", "action": "save"})
    assert page.status == 303 and page.location == "/console/login"
    assert "fd_id" not in admin.jar  # the session's cookies are cleared
    assert get_stored(NUMBER) == before
    assert [e for e in events_of(NUMBER) if e.kind == "rule-changed"] == []


def test_when_cognito_cannot_confirm_the_session_an_admin_page_refuses_and_saves_nothing(
    admin: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did_console.auth import Cognito, SignInUnavailable

    fields = open_form(admin)
    before = get_stored(NUMBER)

    def unavailable(self: Cognito, access_token: str) -> None:
        raise SignInUnavailable("InternalErrorException")

    monkeypatch.setattr(Cognito, "confirm", unavailable)
    page = admin.post(f"{PATH}/edit", {**fields, "tier_timeout_1": "25", "action": "save"})
    assert page.status == 403 and "could not confirm your session" in page.body
    assert "fd_id" in admin.jar  # kept for a retry
    assert get_stored(NUMBER) == before
