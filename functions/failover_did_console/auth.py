"""Who is signed in: Cognito's USER_PASSWORD_AUTH sign-in (with its new-password challenge), sign-out,
and the verification of the ID token every request carries (signature against the pool's JWKS, expiry,
audience, issuer, token use), with PyJWT. Groups come from the token's `cognito:groups` claim."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt

from failover_did_console.settings import ConsoleSettings

ADMIN = "admin"
VIEWER = "viewer"
JWKS_TIMEOUT_SECONDS = 5
JWKS_LIFESPAN_SECONDS = 3600  # keys are re-read at most hourly, and at once for an unknown key id
MAX_TOKEN_CHARS = 8192


class InvalidToken(Exception):
    """The token proves nothing: malformed, forged, expired, or for another pool or client."""


class TokenExpired(InvalidToken):
    """A genuine token of ours whose time is up: the refresh token may get a new one."""


class KeysUnavailable(Exception):
    """The pool's signing keys cannot be read, so no token can be judged either way (the session is kept)."""


class SignInRefused(Exception):
    """Cognito said no (wrong email or password, a password it does not accept, an expired challenge);
    `reason` is Cognito's error code, for the log, never shown to the person signing in."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


class SignInUnavailable(Exception):
    """Cognito could not be reached or failed: nothing is known about the password."""


@dataclass(frozen=True)
class User:
    email: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.groups

    @property
    def can_read(self) -> bool:
        return bool(self.groups & {ADMIN, VIEWER})


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str | None = None  # Cognito sends none when refreshing (the old one stays good)


@dataclass(frozen=True)
class Challenge:
    """Cognito asks for a new password (the first sign-in with a temporary one)."""

    session: str


@cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    """One key client per container: the keys are fetched once and cached, not per request."""
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)


def verify(token: str, config: ConsoleSettings) -> User:
    """The user an ID token names, once its signature, expiry, audience, issuer and use check out."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise InvalidToken("no usable token")
    try:
        key = _jwks_client(config.jwks_url).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=config.client_id,
            issuer=config.issuer,
            options={"require": ["exp", "iat", "aud", "iss", "token_use"]},
        )
    except jwt.PyJWKClientConnectionError as error:
        raise KeysUnavailable(f"the pool's signing keys cannot be read: {error}") from error
    except jwt.ExpiredSignatureError as error:  # checked after the signature: the token is genuine
        raise TokenExpired(str(error)) from error
    except (jwt.PyJWTError, ValueError) as error:
        raise InvalidToken(str(error)) from error
    if claims.get("token_use") != "id":
        raise InvalidToken("not an ID token")
    email = claims.get("email") or claims.get("cognito:username")
    if not isinstance(email, str) or not email:
        raise InvalidToken("the token names nobody")
    groups = claims.get("cognito:groups") or []
    if not isinstance(groups, list):
        raise InvalidToken("malformed groups claim")
    return User(email, frozenset(str(g) for g in groups))


class Cognito:
    """The user pool's sign-in API, through boto3 (AWS_ENDPOINT_URL locally)."""

    def __init__(self, config: ConsoleSettings, client: Any = None) -> None:
        self.config = config
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "cognito-idp",
                region_name=self.config.region,
                config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
            )
        return self._client

    def sign_in(self, email: str, password: str) -> Tokens | Challenge:
        answer = self._call(
            "initiate_auth",
            AuthFlow="USER_PASSWORD_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        return _outcome(answer)

    def new_password(self, email: str, session: str, password: str) -> Tokens | Challenge:
        answer = self._call(
            "respond_to_auth_challenge",
            ClientId=self.config.client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=session,
            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": password},
        )
        return _outcome(answer)

    def refresh(self, refresh_token: str) -> Tokens:
        """New ID and access tokens for the session's refresh token (REFRESH_TOKEN_AUTH); SignInRefused
        when Cognito no longer honours it (expired, revoked by a sign-out, another client's)."""
        answer = self._call(
            "initiate_auth",
            AuthFlow="REFRESH_TOKEN_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
        outcome = _outcome(answer)
        if not isinstance(outcome, Tokens):
            raise SignInRefused("a refresh answered with a challenge")
        return outcome

    def confirm(self, access_token: str) -> None:
        """That Cognito still honours the session (GetUser, authorised by the access token itself): it stops
        once the user is signed out everywhere or removed, hours before the tokens' own expiry could say."""
        self._call("get_user", AccessToken=access_token)

    def sign_out(self, access_token: str) -> None:
        """End every session of the user (Cognito revokes the access and refresh tokens)."""
        self._call("global_sign_out", AccessToken=access_token)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "unknown"))
            if code in _REFUSALS:
                raise SignInRefused(code, str(error.response.get("Error", {}).get("Message", ""))) from error
            raise SignInUnavailable(code) from error
        except BotoCoreError as error:
            raise SignInUnavailable(type(error).__name__) from error
        return answer


# Cognito's answers that mean "no" (rather than "cannot say").
_REFUSALS = frozenset(
    {
        "NotAuthorizedException",
        "UserNotFoundException",
        "UserNotConfirmedException",
        "PasswordResetRequiredException",
        "InvalidPasswordException",
        "InvalidParameterException",
        "CodeMismatchException",
        "ExpiredCodeException",
        "ResourceNotFoundException",  # moto's answer to an unknown refresh token
    }
)


def _outcome(answer: dict[str, Any]) -> Tokens | Challenge:
    result = answer.get("AuthenticationResult")
    if isinstance(result, dict) and result.get("IdToken") and result.get("AccessToken"):
        refresh = result.get("RefreshToken")
        return Tokens(str(result["IdToken"]), str(result["AccessToken"]), str(refresh) if refresh else None)
    if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED" and answer.get("Session"):
        return Challenge(str(answer["Session"]))
    raise SignInRefused(f"unsupported challenge {answer.get('ChallengeName')}")
