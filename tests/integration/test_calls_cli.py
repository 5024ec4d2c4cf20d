"""`failover-did calls` and the missed-calls column of `status`, against calls made through the signed
webhook (DynamoDB under moto)."""

from __future__ import annotations

import json
import sys
import types
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from failover_did.call_record import CallRecord
from failover_did.store import call_log
from failover_did_cli.main import cli
from tests.integration.test_call_log import NUMBER, OTHER, RECORDING_URL, Call
from tests.support import Webhook

JSON_FIELDS = {
    "call_sid",
    "number",
    "caller",
    "started",
    "ended",
    "outcome",
    "answered_by",
    "tiers",
    "recording_url",
    "recording_seconds",
    "transcript",
}


@pytest.fixture
def made_calls(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Three calls: a voicemail on NUMBER, an answered call on OTHER, a hang-up on NUMBER (newest)."""
    module = types.ModuleType("failover_did.notices")

    def missed_call(record: CallRecord, now: datetime) -> None:
        pass

    module.missed_call = missed_call  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "failover_did.notices", module)
    call_log.log_breaker.reset()
    sids = {"voicemail": "CA" + "1" * 32, "answered": "CA" + "2" * 32, "hung-up": "CA" + "3" * 32}

    voicemail = Call(webhook, NUMBER, sids["voicemail"])
    voicemail.start()
    voicemail.dial_ended(0, 1, "busy", DialSipResponseCode="486")
    voicemail.dial_ended(1, 2, "no-answer")
    voicemail.dial_ended(2, 3, "failed", DialSipResponseCode="503")
    voicemail.voicemail(17)
    voicemail.ended(90)
    voicemail.recording(17)

    answered = Call(webhook, OTHER, sids["answered"])
    answered.start()
    answered.dial_ended(0, 1, "completed", caller_gone=True)
    answered.ended(300)

    hung_up = Call(webhook, NUMBER, sids["hung-up"])
    hung_up.start()
    hung_up.ended(12)
    return sids


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_json_lists_every_call_newest_first_with_the_documented_fields(made_calls: dict[str, str]) -> None:
    calls: list[dict[str, Any]] = json.loads(run("calls", "--json").output)
    assert {c["call_sid"] for c in calls} == set(made_calls.values())
    assert [c["started"] for c in calls] == sorted((c["started"] for c in calls), reverse=True)  # newest first
    calls.sort(
        key=lambda c: [made_calls["hung-up"], made_calls["answered"], made_calls["voicemail"]].index(c["call_sid"])
    )
    assert all(set(c) == JSON_FIELDS for c in calls)
    voicemail = calls[2]
    assert voicemail["outcome"] == "voicemail" and voicemail["caller"] == "+14155550999"
    assert (voicemail["recording_url"], voicemail["recording_seconds"]) == (RECORDING_URL, 17)
    assert voicemail["tiers"] == [
        {"target": "sip:frontdesk@pbx.example.com", "outcome": "busy", "sip_code": 486},
        {"target": "+14155550111", "outcome": "no-answer", "sip_code": None},
        {"target": "sip:oncall@dr.example.net", "outcome": "failed", "sip_code": 503},
    ]
    assert voicemail["started"].endswith("Z") and voicemail["ended"].endswith("Z")
    assert calls[1]["answered_by"] == "sip:sales@pbx.example.com"
    assert calls[0]["outcome"] == "caller-hung-up"
    assert calls[0]["tiers"] == []  # the caller hung up before the first Dial ended


def test_missed_and_number_filter(made_calls: dict[str, str]) -> None:
    missed = json.loads(run("calls", "--missed", "--json").output)
    assert sorted(c["call_sid"] for c in missed) == sorted([made_calls["hung-up"], made_calls["voicemail"]])
    other = json.loads(run("calls", OTHER, "--json").output)
    assert [c["call_sid"] for c in other] == [made_calls["answered"]]
    assert json.loads(run("calls", NUMBER, "--since", "2099-01-01", "--json").output) == []


def test_table_says_how_each_call_ended(made_calls: dict[str, str]) -> None:
    output = run("calls", NUMBER, "--missed").output
    assert "MISSED: voicemail (17 s)" in output
    assert "MISSED: caller hung up after 12 s of ringing" in output
    assert "2 missed call(s) since" in output


def test_a_bad_since_is_named(made_calls: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["calls", "--since", "yesterday"])
    assert result.exit_code == 2 and "'yesterday'" in result.output


def test_status_shows_missed_calls_today(made_calls: dict[str, str]) -> None:
    output = run("status").output
    rows = {line.split("│")[1].strip(): line for line in output.splitlines() if "│ +1415555" in line}
    assert rows[NUMBER].rstrip("│ ").endswith("2")
    assert rows[OTHER].rstrip("│ ").endswith("0")
