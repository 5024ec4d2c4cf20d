"""The console function's settings, read from the environment once per container into one typed object.

`settings()` is cached; tests that change the environment call `settings.cache_clear()`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

USER_POOL_ENV = "CONSOLE_USER_POOL_ID"
CLIENT_ID_ENV = "CONSOLE_CLIENT_ID"
REGION_ENV = "AWS_REGION"
JWKS_URL_ENV = "CONSOLE_JWKS_URL"
VOICE_URL_ENV = "CONSOLE_VOICE_URL"
VOICE_URL_PARAM_ENV = "CONSOLE_VOICE_URL_PARAM"

_POOL_ID = re.compile(r"[\w-]{1,50}_[0-9A-Za-z]{1,60}")
_CLIENT_ID = re.compile(r"[\w+]{1,128}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_PARAM = re.compile(r"/[\w./-]{1,1010}")


class ConsoleSettingError(ValueError):
    """A console setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ConsoleSettings:
    user_pool_id: str
    client_id: str
    region: str
    # Where the pool's signing keys are published; locally the AWS emulation's copy.
    jwks_url: str
    # The Voice URL the drill calls: given outright, or the SSM parameter holding it (the local stack
    # publishes its Voice URL there); both empty: PUBLIC_BASE_URL's /voice, else the API's own domain's.
    voice_url: str = ""
    voice_url_param: str = ""

    @property
    def issuer(self) -> str:
        """The `iss` of the pool's tokens (Cognito's, and moto's too, whatever endpoint serves the keys)."""
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"


def _required(environ: Mapping[str, str], name: str, form: re.Pattern[str], example: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConsoleSettingError(f"{name} is not set; expected e.g. {example}")
    if not form.fullmatch(value):
        raise ConsoleSettingError(f"{name}={value!r}: expected e.g. {example}")
    return value


def _url(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if value and not value.startswith(("https://", "http://")):
        raise ConsoleSettingError(f"{name}={value!r}: expected an http(s):// URL")
    return value


def load(environ: Mapping[str, str]) -> ConsoleSettings:
    pool = _required(environ, USER_POOL_ENV, _POOL_ID, "us-east-1_AbCdEf123")
    client = _required(environ, CLIENT_ID_ENV, _CLIENT_ID, "the app client's id, 26 letters and digits")
    region = _required(environ, REGION_ENV, _REGION, "us-east-1")
    jwks = _url(environ, JWKS_URL_ENV) or f"https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json"
    param = environ.get(VOICE_URL_PARAM_ENV, "").strip()
    if param and not _PARAM.fullmatch(param):
        raise ConsoleSettingError(f"{VOICE_URL_PARAM_ENV}={param!r}: expected an SSM parameter name such as /a/b")
    return ConsoleSettings(
        user_pool_id=pool,
        client_id=client,
        region=region,
        jwks_url=jwks,
        voice_url=_url(environ, VOICE_URL_ENV),
        voice_url_param=param,
    )


@cache
def settings() -> ConsoleSettings:
    return load(os.environ)
