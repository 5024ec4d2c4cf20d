"""`failover-did twilio attach` through the real twilio-python client, against a fake Twilio REST API on
127.0.0.1 (TWILIO_API_BASE_URL), and the stack's VoiceUrl output from CloudFormation under moto."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from failover_did_cli.main import cli
from tests.fake_twilio import ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN, FakeTwilio, Server

NUMBER = "+14155550100"
VOICE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/voice"
STATUS_URL = VOICE_URL + "/status"
OLD_URL = "https://old.example.com/answer"
FALLBACK_URL = "https://static.example.com/failover-did/+14155550100.xml"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def twilio_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with Server(fake):
        monkeypatch.setenv("TWILIO_API_BASE_URL", fake.base_url)
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        for name in ("TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_EDGE", "TWILIO_REGION"):
            monkeypatch.delenv(name, raising=False)
        yield fake


def attach(*args: str) -> Result:
    return CliRunner().invoke(cli, ["twilio", "attach", *args])


def change_line(output: str, name: str) -> str:
    line = next((line for line in output.splitlines() if line.split()[:1] == [name]), None)
    assert line is not None, f"no {name} line in:\n{output}"
    return re.sub(r"\s+", " ", line.strip())


def test_dry_run_prints_before_and_after_and_sends_no_update(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER, voice_url=OLD_URL, voice_method="GET")
    result = attach("14155550100", "--voice-url", VOICE_URL, "--dry-run")
    assert result.exit_code == 0, result.output
    assert change_line(result.output, "voice_url") == f"voice_url {OLD_URL} -> {VOICE_URL}"
    assert change_line(result.output, "voice_method") == "voice_method GET -> POST"
    assert change_line(result.output, "voice_fallback_url") == "voice_fallback_url (none) (unchanged)"
    assert change_line(result.output, "voice_fallback_method") == "voice_fallback_method POST (unchanged)"
    assert change_line(result.output, "status_callback") == f"status_callback (none) -> {STATUS_URL}"
    assert change_line(result.output, "status_callback_method") == "status_callback_method POST (unchanged)"
    assert "dry run: nothing changed" in result.output
    assert "attached:" not in result.output
    assert twilio_api.posts() == []
    [listing] = twilio_api.requests
    assert (listing.method, listing.query["PhoneNumber"], listing.user) == ("GET", NUMBER, ACCOUNT_SID)
    assert listing.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"


def test_attach_sends_only_the_changed_fields_and_says_attached(twilio_api: FakeTwilio) -> None:
    record = twilio_api.add_number(NUMBER, voice_url=OLD_URL, voice_method="GET", voice_fallback_url=OLD_URL)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 0, result.output
    [post] = twilio_api.posts()
    assert post.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{record['sid']}.json"
    assert post.form == {"VoiceUrl": VOICE_URL, "VoiceMethod": "POST", "StatusCallback": STATUS_URL}
    assert f"attached: {NUMBER} -> {VOICE_URL}" in result.output
    assert "voice fallback left as it is" in result.output
    assert (record["voice_url"], record["voice_method"], record["voice_fallback_url"]) == (VOICE_URL, "POST", OLD_URL)
    assert (record["status_callback"], record["status_callback_method"]) == (STATUS_URL, "POST")


def test_a_method_already_post_is_not_sent_again(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER, voice_url=None, voice_method="POST")
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 0, result.output
    assert change_line(result.output, "voice_url") == f"voice_url (none) -> {VOICE_URL}"
    assert [p.form for p in twilio_api.posts()] == [{"VoiceUrl": VOICE_URL, "StatusCallback": STATUS_URL}]


def test_fallback_url_sets_the_fallback_fetched_with_get(twilio_api: FakeTwilio) -> None:
    record = twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    result = attach(NUMBER, "--voice-url", VOICE_URL, "--fallback-url", FALLBACK_URL)
    assert result.exit_code == 0, result.output
    assert [p.form for p in twilio_api.posts()] == [
        {
            "VoiceUrl": VOICE_URL,
            "VoiceFallbackUrl": FALLBACK_URL,
            "VoiceFallbackMethod": "GET",
            "StatusCallback": STATUS_URL,
        }
    ]
    assert change_line(result.output, "voice_fallback_url") == f"voice_fallback_url (none) -> {FALLBACK_URL}"
    assert change_line(result.output, "voice_fallback_method") == "voice_fallback_method POST -> GET"
    assert (record["voice_fallback_url"], record["voice_fallback_method"]) == (FALLBACK_URL, "GET")


def test_an_attached_number_needs_no_update(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER, voice_url=VOICE_URL, voice_method="POST", status_callback=STATUS_URL)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 0, result.output
    assert "already attached" in result.output
    assert twilio_api.posts() == []


@pytest.mark.parametrize(
    ("binding", "sid", "words"),
    [
        ("voice_application_sid", "AP" + "c" * 32, "voice application"),
        ("trunk_sid", "TK" + "d" * 32, "SIP trunk"),
    ],
)
def test_a_number_bound_to_an_application_or_trunk_is_refused(
    twilio_api: FakeTwilio, binding: str, sid: str, words: str
) -> None:
    twilio_api.add_number(NUMBER, voice_url=OLD_URL, **{binding: sid})
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert f"Twilio ignores the Voice URL while {NUMBER} is bound to {words} {sid}" in result.output
    assert "unbind it in the console first" in result.output
    assert twilio_api.posts() == []


def test_an_unknown_number_exits_1_naming_the_account(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number("+14155550111")
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert f"{NUMBER} is not a number of account {ACCOUNT_SID}" in result.output
    assert twilio_api.posts() == []


def test_only_the_exact_number_of_a_pattern_match_is_attached(twilio_api: FakeTwilio) -> None:
    other = twilio_api.add_number("+5" + NUMBER[1:])  # Twilio's PhoneNumber filter matches it too
    mine = twilio_api.add_number(NUMBER)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 0, result.output
    assert [p.path.rsplit("/", 1)[-1] for p in twilio_api.posts()] == [f"{mine['sid']}.json"]
    assert other["voice_url"] is None


def test_an_invalid_number_is_a_usage_error(twilio_api: FakeTwilio) -> None:
    result = attach("12345", "--voice-url", VOICE_URL)
    assert result.exit_code == 2
    assert "NUMBER" in result.output
    assert twilio_api.requests == []


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (["TWILIO_AUTH_TOKEN"], "TWILIO_AUTH_TOKEN"),
        (["TWILIO_ACCOUNT_SID"], "TWILIO_ACCOUNT_SID"),
        (["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"], "TWILIO_API_KEY and TWILIO_API_SECRET"),
    ],
)
def test_missing_credentials_are_a_usage_error_naming_the_variables(
    twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch, unset: list[str], named: str
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    twilio_api.add_number(NUMBER)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 2
    assert named in result.output
    assert twilio_api.requests == []


def test_an_api_key_without_its_secret_is_a_usage_error(
    twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 2
    assert "TWILIO_API_SECRET" in result.output
    assert twilio_api.requests == []


def test_api_key_authentication(twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", API_SECRET)
    twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 0, result.output
    assert "attached" in result.output
    assert [(r.method, r.user, r.status) for r in twilio_api.requests] == [
        ("GET", API_KEY, 200),
        ("POST", API_KEY, 200),
    ]
    assert all(f"/Accounts/{ACCOUNT_SID}/" in r.path for r in twilio_api.requests)


@pytest.mark.parametrize(("variable", "variables"), [("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")])
def test_wrong_credentials_exit_1_with_a_clear_message(
    twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch, variable: str, variables: str
) -> None:
    monkeypatch.setenv(variable, "not-the-token")
    twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
    assert "Traceback" not in result.output
    assert (
        f"Twilio refused the credentials for account {ACCOUNT_SID} "
        "(HTTP 401, error 20003: Your AccountSid or AuthToken was incorrect); "
        f"check {variables}"
    ) in result.output
    assert [(r.method, r.status) for r in twilio_api.requests] == [("GET", 401)]


def test_wrong_api_secret_names_the_api_key_variables(twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", "wrong")
    twilio_api.add_number(NUMBER)
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert "check TWILIO_API_KEY and TWILIO_API_SECRET" in result.output


def test_an_update_refused_by_twilio_is_one_line(twilio_api: FakeTwilio) -> None:
    record = twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    # Listed, but gone by the time of the update (released meanwhile): Twilio answers 404.
    twilio_api.numbers["PNlisted"] = twilio_api.numbers.pop(record["sid"])
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert "Twilio answered HTTP 404, error 20404: Unable to update record: The requested resource" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_api_exits_1(twilio_api: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_API_BASE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    result = attach(NUMBER, "--voice-url", VOICE_URL)
    assert result.exit_code == 1
    assert "cannot reach the Twilio API at http://127.0.0.1:9" in result.output


def test_plain_http_voice_url_needs_allow_http(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER)
    refused = attach(NUMBER, "--voice-url", "http://voice.example.com/voice")
    assert refused.exit_code == 2
    assert "--allow-http" in refused.output
    assert twilio_api.requests == []
    allowed = attach(NUMBER, "--voice-url", "http://voice.example.com/voice", "--allow-http")
    assert allowed.exit_code == 0, allowed.output
    assert "warning: --voice-url http://voice.example.com/voice is plain http" in allowed.output
    assert [p.form["VoiceUrl"] for p in twilio_api.posts()] == ["http://voice.example.com/voice"]


def create_stack(name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/marker", "Type": "String", "Value": "x"},
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def test_voice_url_comes_from_the_stack_output(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    with mock_aws():
        create_stack("failover-did", {"VoiceUrl": VOICE_URL, "ApiBaseUrl": VOICE_URL.removesuffix("/voice")})
        create_stack("failover-did-staging", {"VoiceUrl": VOICE_URL.replace("abc123", "stg456")})
        default = attach(NUMBER, "--dry-run")
        staging = attach(NUMBER, "--stack", "failover-did-staging")
    assert default.exit_code == 0, default.output
    assert f"Voice URL from stack 'failover-did': {VOICE_URL}" in default.output
    assert change_line(default.output, "voice_url") == f"voice_url {OLD_URL} -> {VOICE_URL}"
    assert staging.exit_code == 0, staging.output
    assert [p.form["VoiceUrl"] for p in twilio_api.posts()] == [VOICE_URL.replace("abc123", "stg456")]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (None, "cannot read stack 'failover-did': Stack with id failover-did does not exist"),
        ({"ApiBaseUrl": "https://abc123.execute-api.us-east-1.amazonaws.com"}, "has no VoiceUrl output"),
    ],
)
def test_a_missing_stack_or_output_suggests_voice_url(
    twilio_api: FakeTwilio, outputs: dict[str, str] | None, message: str
) -> None:
    twilio_api.add_number(NUMBER)
    with mock_aws():
        if outputs is not None:
            create_stack("failover-did", outputs)
        result = attach(NUMBER)
    assert result.exit_code == 1
    assert message in result.output
    assert "--voice-url" in result.output
    assert twilio_api.requests == []


def test_the_installed_command_attaches_in_a_subprocess(twilio_api: FakeTwilio) -> None:
    twilio_api.add_number(NUMBER, voice_url=OLD_URL)
    command = Path(sys.executable).parent / "failover-did"
    done = subprocess.run(
        [str(command), "twilio", "attach", NUMBER, "--voice-url", VOICE_URL, "--fallback-url", FALLBACK_URL],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "attached:" in done.stdout
    assert [p.form for p in twilio_api.posts()] == [
        {
            "VoiceUrl": VOICE_URL,
            "VoiceFallbackUrl": FALLBACK_URL,
            "VoiceFallbackMethod": "GET",
            "StatusCallback": STATUS_URL,
        }
    ]
    assert f"warning: TWILIO_API_BASE_URL is set: talking to {twilio_api.base_url}" in done.stderr


def test_the_command_module_does_not_import_the_rest_client() -> None:
    code = "import sys, failover_did_cli.twilio_cmd; print('twilio.rest' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
