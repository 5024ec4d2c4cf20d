"""Who an audit event names: the local user for the local stack, the STS caller otherwise, and a reason
instead of a name when STS cannot answer (the change is still recorded)."""

from __future__ import annotations

import getpass

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from failover_did_cli.env import LOCAL_ENV
from failover_did_cli.identity import operator_identity


class Sts:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    def get_caller_identity(self) -> dict[str, str]:
        self.calls += 1
        if self.error:
            raise self.error
        return {"Arn": "arn:aws:iam::123456789012:user/alice"}


def test_the_local_stack_names_the_local_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCAL_ENV, "http://127.0.0.1:3001")
    sts = Sts()
    assert operator_identity(lambda: sts) == f"{getpass.getuser()} (local stack)"
    assert sts.calls == 0


def test_a_deployed_stack_names_the_caller_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    assert operator_identity(lambda: Sts()) == "arn:aws:iam::123456789012:user/alice"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "token expired"}}, "GetCallerIdentity"),
            "token expired",
        ),
        (EndpointConnectionError(endpoint_url="https://sts.amazonaws.com"), "Could not connect"),
    ],
)
def test_sts_failing_is_recorded_as_unknown_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, error: Exception, said: str
) -> None:
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    who = operator_identity(lambda: Sts(error))
    assert who.startswith("unknown (") and said in who
