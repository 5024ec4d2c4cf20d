"""The pages fed by calls: a drill run from the console against the running webhook (its pass/fail table),
missed calls (caller, time, the tiers tried and how each ended, the voicemail link) and the alerts log
filtered by number, kind and days. Calls are played as Twilio plays them, into the real webhook."""

from __future__ import annotations

from typing import Any

import pytest

from failover_did.drill.simulator import SimulatedCall, TwilioSimulator
from tests.conftest import TOKEN
from tests.integration.console.conftest import Browser

NUMBER = "+14155550100"
PATH = "/console/numbers/%2B14155550100"
CALLER = "+14155550999"


def voicemail_call(webhook_url: str, to: str = NUMBER, caller: str = CALLER) -> SimulatedCall:
    """Every tier busy, then the caller leaves a 12 s message and hangs up: a missed call with a recording."""
    call = SimulatedCall(TwilioSimulator(webhook_url, TOKEN), to, caller)
    call.start()
    while call.last.dial is not None:
        call.dial_ended("busy")
    assert call.last.records, call.last.body
    call.leave_voicemail(12)
    assert call.hang_up(40).status == 200
    assert call.recording_stored(12).status == 200
    return call


def answered_call(webhook_url: str) -> SimulatedCall:
    call = SimulatedCall(TwilioSimulator(webhook_url, TOKEN), NUMBER, "+14155550888")
    call.start()
    call.dial_ended("completed", bridged=True)
    call.hang_up(60)
    return call


def drill_rows(page: Any) -> list[tuple[str, str]]:
    table = page.html.by_id("drill")
    assert table is not None, page.body
    return [(tr.one("td", class_="check").text, tr.one("td", class_="result").text) for tr in table.all("tr")[1:]]


def test_the_drill_button_runs_the_checks_against_the_webhook(
    admin: Browser, webhook_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did_console.settings import settings

    monkeypatch.setenv("CONSOLE_VOICE_URL", webhook_url)
    settings.cache_clear()
    html = admin.get(PATH).html
    assert html.by_id("drill") is not None
    page = admin.post(f"{PATH}/drill", {"csrf": admin.csrf()})
    assert page.status == 200, page.body
    assert drill_rows(page) == [
        ("SIP 503 injection", "PASS"),
        ("Ringing timeout", "PASS"),
        ("Event logged", "PASS"),
        ("Signature enforced", "PASS"),
    ]
    # +14155550200 fails over on busy, failed and 5xx only: a ring-out would not fail over
    other = dict(drill_rows(admin.post("/console/numbers/%2B14155550200/drill", {"csrf": admin.csrf()})))
    assert other["SIP 503 injection"] == "PASS" and other["Ringing timeout"] == "FAIL"
    # drill calls are test calls: never missed calls
    missed = admin.get("/console/missed").html.by_id("missed")
    assert missed is not None and [tr for tr in missed.all("tr") if "data-call" in tr.attrs] == []


def test_the_drill_reports_an_unreachable_webhook_as_a_failed_row(
    admin: Browser, rules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover_did_console.settings import settings

    monkeypatch.setenv("CONSOLE_VOICE_URL", "http://127.0.0.1:9/voice")  # discard port: nothing listens
    settings.cache_clear()
    page = admin.post(f"{PATH}/drill", {"csrf": admin.csrf()})
    assert page.status == 200
    assert [result for _, result in drill_rows(page)] == ["FAIL"]


def test_the_drills_voice_url_comes_from_the_setting_the_parameter_or_the_apis_domain(
    monkeypatch: pytest.MonkeyPatch, aws: Any
) -> None:
    import boto3

    from failover_did.settings import settings as service_settings
    from failover_did_console.pages.drill import voice_url
    from failover_did_console.settings import load

    base = {"CONSOLE_USER_POOL_ID": "us-east-1_abc", "CONSOLE_CLIENT_ID": "abc", "AWS_REGION": "us-east-1"}
    # voice_url only builds the URL; nothing is sent to it here
    event = {"requestContext": {"domainName": "abc.execute-api.us-east-1.amazonaws.com"}, "headers": {"host": "evil"}}
    assert voice_url(load(base), event) == "https://abc.execute-api.us-east-1.amazonaws.com/voice"
    assert voice_url(load({**base, "CONSOLE_VOICE_URL": "http://127.0.0.1:3000/voice"}), event).endswith(":3000/voice")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/failover-did/local/voice-url", Value="http://127.0.0.1:4321/voice", Type="String"
    )
    with_param = load({**base, "CONSOLE_VOICE_URL_PARAM": "/failover-did/local/voice-url"})
    assert voice_url(with_param, event) == "http://127.0.0.1:4321/voice"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://calls.example.com")
    service_settings.cache_clear()
    assert voice_url(load(base), event) == "https://calls.example.com/voice"


def test_a_viewer_cannot_run_a_drill(viewer: Browser, webhook_url: str) -> None:
    assert viewer.post(f"{PATH}/drill", {"csrf": viewer.csrf()}).status == 403


def test_missed_calls_show_caller_time_tiers_and_the_voicemail_link(admin: Browser, webhook_url: str) -> None:
    call = voicemail_call(webhook_url)
    answered_call(webhook_url)
    page = admin.get("/console/missed")
    assert page.status == 200
    table = page.html.by_id("missed")
    assert table is not None
    rows = table.all("tr", data_call=call.sid)
    assert len(rows) == 1 and len(table.all("tr")) == 2  # the answered call is not missed
    row = rows[0]
    assert row.one("td", class_="caller").text == CALLER
    tried = [li.text for li in row.one("td", class_="tried").all("li")]
    assert tried == ["sip:frontdesk@pbx.example.com: busy", "+14155550111: busy", "sip:oncall@dr.example.net: busy"]
    assert row.one("td", class_="outcome").text == "left a voicemail"
    link = row.one("td", class_="voicemail").one("a")
    assert link.attrs["href"].startswith("https://api.twilio.com/2010-04-01/Accounts/")
    # the same call counts on the Numbers page and the number's page
    numbers = admin.get("/console/numbers").html.one("tr", data_number=NUMBER)
    assert numbers.one("td", class_="missed").text.startswith("1")
    assert CALLER in admin.get(PATH).html.by_id("missed-today").text  # type: ignore[union-attr]
    # filtered by number and by days
    assert (
        admin.get("/console/missed", "number=%2B14155550200").html.by_id("missed").all("tr", data_call=call.sid) == []
    )  # type: ignore[union-attr]
    assert (
        admin.get("/console/missed", "from=2020-01-01&to=2020-01-02").html.by_id("missed").all("tr", data_call=call.sid)
        == []
    )  # type: ignore[union-attr]


def test_alerts_are_filtered_by_number_kind_and_days(admin: Browser, webhook_url: str) -> None:
    voicemail_call(webhook_url)  # failovers on +14155550100
    fields = {"csrf": admin.csrf()}
    other = SimulatedCall(TwilioSimulator(webhook_url, TOKEN), "+14155550200", CALLER)
    other.start()
    other.dial_ended("busy")  # a failover on +14155550200
    edit = admin.get("/console/numbers/%2B14155550200/edit").html
    form = {e.attrs["name"]: e.attrs.get("value", "") for e in edit.by_id("rule").all("input") if e.attrs.get("name")}  # type: ignore[union-attr]
    form = {
        k: v
        for k, v in form.items()
        if not k.startswith(("trigger_", "primary_screen", "primary_no", "tier_screen", "tier_no", "final_"))
    }
    form.update(trigger_busy="1", trigger_failed="1", final_say="Bye.", action="save", **fields)
    assert admin.post("/console/numbers/%2B14155550200/edit", form).status == 303

    def kinds(query: str) -> list[tuple[str, str]]:
        page = admin.get("/console/alerts", query)
        assert page.status == 200, page.body
        table = page.html.by_id("alerts")
        assert table is not None
        return [(tr.all("td")[1].text, tr.attrs["data-kind"]) for tr in table.all("tr") if "data-kind" in tr.attrs]

    everything = kinds("")
    assert ("+14155550100", "failover") in everything and ("+14155550200", "rule-changed") in everything
    assert set(kinds("kind=failover")) == {("+14155550100", "failover"), ("+14155550200", "failover")}
    assert set(kinds("number=%2B14155550200")) == {("+14155550200", "failover"), ("+14155550200", "rule-changed")}
    assert kinds("number=%2B14155550200&kind=rule-changed") == [("+14155550200", "rule-changed")]
    assert kinds("from=2020-01-01&to=2020-01-31") == []
    words = admin.get("/console/alerts", "kind=rule-changed").html.by_id("alerts").text  # type: ignore[union-attr]
    assert "by admin@example.com" in words
