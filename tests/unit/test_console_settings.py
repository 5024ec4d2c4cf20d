"""The console function's settings: required ones named when missing, the JWKS URL and issuer derived."""

from __future__ import annotations

import pytest

from failover_did_console.settings import ConsoleSettingError, load

BASE = {
    "CONSOLE_USER_POOL_ID": "us-east-1_AbCdEf123",
    "CONSOLE_CLIENT_ID": "1a2b3c4d5e6f7g8h9i0j1k2l3m",
    "AWS_REGION": "us-east-1",
}


def test_defaults_follow_cognitos_addresses() -> None:
    config = load(BASE)
    assert config.jwks_url == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123/.well-known/jwks.json"
    assert config.issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
    assert config.voice_url == "" and config.voice_url_param == ""


def test_locally_the_keys_come_from_the_emulation_the_issuer_stays_cognitos() -> None:
    config = load({**BASE, "CONSOLE_JWKS_URL": "http://127.0.0.1:5000/us-east-1_AbCdEf123/.well-known/jwks.json"})
    assert config.jwks_url.startswith("http://127.0.0.1:5000/")
    assert config.issuer.startswith("https://cognito-idp.us-east-1.amazonaws.com/")


@pytest.mark.parametrize("name", sorted(BASE))
def test_a_missing_required_setting_is_named(name: str) -> None:
    with pytest.raises(ConsoleSettingError, match=name):
        load({k: v for k, v in BASE.items() if k != name})


@pytest.mark.parametrize(
    "name,value",
    [
        ("CONSOLE_USER_POOL_ID", "no-underscore"),
        ("CONSOLE_CLIENT_ID", "a b"),
        ("AWS_REGION", "mars"),
        ("CONSOLE_JWKS_URL", "file:///etc/passwd"),
        ("CONSOLE_VOICE_URL", "javascript:alert(1)"),
        ("CONSOLE_VOICE_URL_PARAM", "no-slash"),
    ],
)
def test_a_malformed_setting_is_named_with_its_value(name: str, value: str) -> None:
    with pytest.raises(ConsoleSettingError, match=name):
        load({**BASE, name: value})
