"""`failover-did console add-user` and the local stack's console pool, against moto's Cognito: a user lands in
the pool and the group asked for, every refusal is one line naming the value, and the local pool is the
template's (its password policy, app client and groups) with an admin who signs in without a challenge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from click.testing import CliRunner
from moto import mock_aws

from failover_did_cli import console_users, env, schema
from failover_did_cli.main import cli

TEMPLATE = schema.load_template()


@pytest.fixture
def cognito(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in (env.STACK_ENV, env.LOCAL_ENV, console_users.POOL_ID_ENV, console_users.PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    env._stack_outputs.clear()
    with mock_aws():
        yield boto3.client("cognito-idp", region_name="us-east-1")
    env._stack_outputs.clear()


@pytest.fixture
def deployed(cognito: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployed stack whose ConsoleUserPoolId output names a pool made as the template makes it."""
    pool = console_users.create_local_pool(cognito, TEMPLATE)
    stack = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ConsoleUserPoolId": {"Value": pool.pool_id}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="failover-did", TemplateBody=json.dumps(stack)
    )
    monkeypatch.setenv(env.STACK_ENV, "failover-did")
    return pool.pool_id


def add_user(*args: str) -> Any:
    return CliRunner().invoke(cli, ["console", "add-user", *args])


def groups_of(cognito: Any, pool_id: str, email: str) -> list[str]:
    return sorted(
        g["GroupName"] for g in cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=email)["Groups"]
    )


def test_add_user_makes_an_admin_whom_cognito_emails(cognito: Any, deployed: str) -> None:
    result = add_user("ops@example.com")
    assert result.exit_code == 0, result.output
    assert "added ops@example.com (admin)" in result.output and "emails them a temporary password" in result.output
    user = cognito.admin_get_user(UserPoolId=deployed, Username="ops@example.com")
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"  # a temporary password, changed at the first sign-in
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email"] == "ops@example.com"
    assert groups_of(cognito, deployed, "ops@example.com") == ["admin"]


def test_viewer_is_in_the_viewer_group_only(cognito: Any, deployed: str) -> None:
    result = add_user("reader@example.com", "--viewer")
    assert result.exit_code == 0, result.output
    assert "(viewer)" in result.output
    assert groups_of(cognito, deployed, "reader@example.com") == ["viewer"]


def test_an_existing_user_is_refused_in_one_line(cognito: Any, deployed: str) -> None:
    assert add_user("ops@example.com", "--viewer").exit_code == 0
    result = add_user("ops@example.com")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: ops@example.com already has a console user (in user pool {deployed})"
    assert groups_of(cognito, deployed, "ops@example.com") == ["viewer"]  # not made an admin on the way


@pytest.mark.parametrize("email", ["ops", "ops@", "@example.com", "ops @example.com", "a@b@c"])
def test_a_bad_email_is_named_and_nothing_is_created(cognito: Any, deployed: str, email: str) -> None:
    result = add_user(email)
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: {email!r} is not an email address")
    assert cognito.list_users(UserPoolId=deployed)["Users"] == []


def test_a_stack_that_does_not_exist_is_named(cognito: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.STACK_ENV, "no-such-stack")
    result = add_user("ops@example.com")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot read stack 'no-such-stack' (FAILOVER_DID_STACK):")
    assert len(result.output.strip().splitlines()) == 1


def test_a_stack_deployed_before_the_console_says_so(cognito: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    old = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    boto3.client("cloudformation", region_name="us-east-1").create_stack(StackName="old", TemplateBody=json.dumps(old))
    monkeypatch.setenv(env.STACK_ENV, "old")
    result = add_user("ops@example.com")
    assert result.exit_code == 1
    assert "stack 'old' (FAILOVER_DID_STACK) has no ConsoleUserPoolId output" in result.output


def test_without_a_stack_it_says_what_to_set(cognito: Any) -> None:
    result = add_user("ops@example.com")
    assert result.exit_code == 1
    assert "set FAILOVER_DID_STACK" in result.output and "FAILOVER_DID_LOCAL" in result.output


def console(*args: str) -> Any:
    return CliRunner().invoke(cli, ["console", *args])


def test_users_lists_each_with_role_and_whether_they_signed_in(cognito: Any, deployed: str) -> None:
    assert add_user("ops@example.com").exit_code == 0
    assert add_user("reader@example.com", "--viewer").exit_code == 0
    cognito.admin_set_user_password(
        UserPoolId=deployed, Username="ops@example.com", Password="A" * 6 + "b1" * 4, Permanent=True
    )
    result = console("users")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ops@example.com  admin  has signed in",
        "reader@example.com  viewer  not signed in yet",
        "2 console user(s)",
    ]


def test_remove_user_deletes_them_and_only_them(cognito: Any, deployed: str) -> None:
    assert add_user("ops@example.com").exit_code == 0
    assert add_user("leaver@example.com").exit_code == 0
    result = console("remove-user", "leaver@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed leaver@example.com: signed out everywhere")  # checked by the console
    left = cognito.list_users(UserPoolId=deployed)["Users"]
    assert [a["Value"] for u in left for a in u["Attributes"] if a["Name"] == "email"] == ["ops@example.com"]


def test_remove_user_asks_first_and_without_a_terminal_needs_yes(cognito: Any, deployed: str) -> None:
    assert add_user("ops@example.com").exit_code == 0
    result = console("remove-user", "ops@example.com")  # the runner's stdin is not a terminal
    assert result.exit_code == 1
    assert "no terminal to confirm on; pass --yes" in result.output
    assert len(cognito.list_users(UserPoolId=deployed)["Users"]) == 1


def test_removing_someone_who_is_not_a_user_says_so_in_one_line(cognito: Any, deployed: str) -> None:
    result = console("remove-user", "nobody@example.com", "--yes")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: nobody@example.com has no console user (in user pool {deployed})"


# --------------------------------------------------------------------------------------------------
# The local stack's pool
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def local_emails(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the local stack's emulation does to moto (admin@localhost), undone after the test."""
    from moto.cognitoidp import utils

    monkeypatch.setitem(utils.FORMATS, "email", utils.FORMATS["email"])
    from failover_did_cli.aws_emulation import accept_local_emails

    accept_local_emails()


def test_the_local_pool_is_the_templates(cognito: Any) -> None:
    pool = console_users.create_local_pool(cognito, TEMPLATE)
    described = cognito.describe_user_pool(UserPoolId=pool.pool_id)["UserPool"]
    template_pool = next(r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Cognito::UserPool")
    policy = template_pool["Properties"]["Policies"]["PasswordPolicy"]
    assert {k: described["Policies"]["PasswordPolicy"][k] for k in policy} == policy
    assert described["UsernameAttributes"] == ["email"]
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    client = cognito.describe_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.client_id)["UserPoolClient"]
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert "ClientSecret" not in client
    assert pool.groups == ("admin", "viewer")
    assert sorted(g["GroupName"] for g in cognito.list_groups(UserPoolId=pool.pool_id)["Groups"]) == ["admin", "viewer"]


def test_the_local_admin_signs_in_at_once_with_the_chosen_password(
    cognito: Any, local_emails: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(console_users.PASSWORD_ENV, "Chosen-Passw0rd")
    endpoint = "http://127.0.0.1:4566"
    monkeypatch.setattr(boto3, "client", lambda service, **kwargs: cognito)  # moto in-process, not a server
    login = console_users.start_local_console(endpoint)
    assert (login.email, login.password, login.generated) == ("admin@localhost", "Chosen-Passw0rd", False)
    pool_id, client_id = login.pool.pool_id, login.pool.client_id
    assert console_users.console_environment(endpoint, login.pool) == {
        "CONSOLE_USER_POOL_ID": pool_id,
        "CONSOLE_CLIENT_ID": client_id,
        "CONSOLE_JWKS_URL": f"{endpoint}/{pool_id}/.well-known/jwks.json",
    }
    signed_in = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "admin@localhost", "PASSWORD": "Chosen-Passw0rd"},
    )
    assert "ChallengeName" not in signed_in  # permanent: no new-password challenge
    claims = jwt.decode(signed_in["AuthenticationResult"]["IdToken"], options={"verify_signature": False})
    assert claims["email"] == "admin@localhost" and claims["cognito:groups"] == ["admin"]
    assert claims["aud"] == client_id and claims["token_use"] == "id"
    assert claims["iss"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"


def test_a_generated_local_password_meets_the_policy(
    cognito: Any, local_emails: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boto3, "client", lambda service, **kwargs: cognito)
    login = console_users.start_local_console("http://127.0.0.1:4566")
    assert login.generated and len(login.password) >= 12
    signed_in = cognito.initiate_auth(
        ClientId=login.pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": login.email, "PASSWORD": login.password},
    )
    assert "AuthenticationResult" in signed_in


def test_a_local_password_the_policy_refuses_names_the_variable(
    cognito: Any, local_emails: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(console_users.PASSWORD_ENV, "short")
    monkeypatch.setattr(boto3, "client", lambda service, **kwargs: cognito)
    with pytest.raises(console_users.UserError, match="FAILOVER_DID_CONSOLE_PASSWORD: the console's password policy"):
        console_users.start_local_console("http://127.0.0.1:4566")
