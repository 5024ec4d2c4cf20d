"""The operator console's Cognito user pool from the CLI's side: finding it (a deployed stack's output, or the
local stack's pool by name), adding, listing and removing its users, and creating the local stack's pool as the template
defines it (the template is the one description of the pool, as it is of the tables)."""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from failover_did_cli import schema
from failover_did_cli.env import STACK_ENV
from failover_did_console.auth import ADMIN, VIEWER
from failover_did_console.settings import CLIENT_ID_ENV, JWKS_URL_ENV
from failover_did_console.settings import USER_POOL_ENV as POOL_ID_ENV

PASSWORD_ENV = "FAILOVER_DID_CONSOLE_PASSWORD"
LOCAL_POOL_NAME = "failover-did-console"
LOCAL_ADMIN = "admin@localhost"
ADMIN_GROUP = ADMIN  # the groups the console's sign-in reads from the token
VIEWER_GROUP = VIEWER

# One '@', no spaces, something either side: Cognito judges the rest (and says why in its own words).
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class UserError(Exception):
    """What went wrong, in one line naming the value."""


@dataclass(frozen=True)
class LocalPool:
    pool_id: str
    client_id: str
    groups: tuple[str, ...]


def _resource(template: Mapping[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r.get("Properties") or {} for r in template["Resources"].values() if r.get("Type") == kind]
    return dict(found)


def _plain(value: Any) -> bool:
    """Whether a property value is literal (no intrinsic function that only CloudFormation can resolve)."""
    if isinstance(value, Mapping):
        return not any(str(key).startswith("Fn::") or key == "Ref" for key in value) and all(
            _plain(v) for v in value.values()
        )
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


def pool_kwargs(template: Mapping[str, Any]) -> dict[str, Any]:
    """CreateUserPool's arguments from the template's user pool: its literal settings (the invitation's text,
    which names the deployed URL, and the pool tier stay behind)."""
    props = _resource(template, "AWS::Cognito::UserPool")
    kwargs: dict[str, Any] = {"PoolName": LOCAL_POOL_NAME}
    for key in ("UsernameAttributes", "UsernameConfiguration", "AutoVerifiedAttributes", "Policies"):
        if key in props and _plain(props[key]):
            kwargs[key] = props[key]
    admin_create = props.get("AdminCreateUserConfig") or {}
    if "AllowAdminCreateUserOnly" in admin_create:
        kwargs["AdminCreateUserConfig"] = {"AllowAdminCreateUserOnly": admin_create["AllowAdminCreateUserOnly"]}
    return kwargs


def client_kwargs(template: Mapping[str, Any]) -> dict[str, Any]:
    """CreateUserPoolClient's arguments from the template's app client (without the pool, given at creation)."""
    props = _resource(template, "AWS::Cognito::UserPoolClient")
    return {key: value for key, value in props.items() if key != "UserPoolId" and _plain(value)}


def group_names(template: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        sorted(
            str(r["Properties"]["GroupName"])
            for r in template["Resources"].values()
            if r.get("Type") == "AWS::Cognito::UserPoolGroup"
        )
    )


def generated_password() -> str:
    """A password the template's policy accepts (12+ characters, upper and lower case, digits)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def create_local_pool(cognito: Any, template: Mapping[str, Any] | None = None) -> LocalPool:
    """The local stack's user pool, app client and groups, as the template defines them."""
    template = schema.load_template() if template is None else template
    pool_id = cognito.create_user_pool(**pool_kwargs(template))["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(UserPoolId=pool_id, **client_kwargs(template))["UserPoolClient"][
        "ClientId"
    ]
    groups = group_names(template)
    for group in groups:
        cognito.create_group(UserPoolId=pool_id, GroupName=group)
    return LocalPool(pool_id, client_id, groups)


def set_local_admin(cognito: Any, pool_id: str, password: str, email: str = LOCAL_ADMIN) -> None:
    """The local admin, with a permanent password: the first sign-in needs no new-password challenge."""
    add_user(cognito, pool_id, email, ADMIN_GROUP, temporary_password=generated_password())
    try:
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    except cognito.exceptions.InvalidPasswordException as error:
        raise UserError(f"{PASSWORD_ENV}: the console's password policy refuses it ({_message(error)})") from error


def add_user(cognito: Any, pool_id: str, email: str, group: str, *, temporary_password: str | None = None) -> None:
    """AdminCreateUser and AdminAddUserToGroup. Without `temporary_password` Cognito makes one and emails it;
    with one (the local stack, which sends no email) nothing is sent."""
    if not EMAIL.fullmatch(email):
        raise UserError(f"{email!r} is not an email address (the console signs in with an email, e.g. ops@example.com)")
    extra: dict[str, Any] = (
        {"DesiredDeliveryMediums": ["EMAIL"]}
        if temporary_password is None
        else {"MessageAction": "SUPPRESS", "TemporaryPassword": temporary_password}
    )
    try:
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            **extra,
        )
    except cognito.exceptions.UsernameExistsException as error:
        raise UserError(f"{email} already has a console user (in user pool {pool_id})") from error
    except cognito.exceptions.InvalidParameterException as error:
        raise UserError(f"{email!r} cannot be a console user: {_message(error)}") from error
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


@dataclass(frozen=True)
class ConsoleUser:
    email: str
    groups: tuple[str, ...]
    status: str  # Cognito's: FORCE_CHANGE_PASSWORD (not signed in yet), CONFIRMED, ...
    enabled: bool


def list_users(cognito: Any, pool_id: str) -> list[ConsoleUser]:
    """Every user of the pool with the console groups they are in: one paged ListUsers and one paged
    ListUsersInGroup a group, not a request per user."""
    members: dict[str, list[str]] = {}
    for group in (ADMIN_GROUP, VIEWER_GROUP):
        for page in cognito.get_paginator("list_users_in_group").paginate(UserPoolId=pool_id, GroupName=group):
            for user in page["Users"]:
                members.setdefault(user["Username"], []).append(group)
    found = []
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            found.append(
                ConsoleUser(
                    email=attributes.get("email", user["Username"]),
                    groups=tuple(members.get(user["Username"], ())),
                    status=str(user.get("UserStatus", "")),
                    enabled=bool(user.get("Enabled", True)),
                )
            )
    return sorted(found, key=lambda u: u.email)


def remove_user(cognito: Any, pool_id: str, email: str) -> None:
    """Sign the user out everywhere (their refresh tokens stop working), then delete them."""
    try:
        cognito.admin_user_global_sign_out(UserPoolId=pool_id, Username=email)
        cognito.admin_delete_user(UserPoolId=pool_id, Username=email)
    except cognito.exceptions.UserNotFoundException as error:
        raise UserError(f"{email} has no console user (in user pool {pool_id})") from error


def find_pool_id(cognito: Any, *, local: bool) -> str:
    """The console's user pool: CONSOLE_USER_POOL_ID (a deployed stack's output sets it), else, on the local
    stack, the pool it created by name."""
    pool_id = os.environ.get(POOL_ID_ENV, "").strip()
    if pool_id:
        return pool_id
    if local:
        pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
        found = [p["Id"] for p in pools if p.get("Name") == LOCAL_POOL_NAME]
        if found:
            return str(found[0])
        raise UserError("the local stack has no console user pool (restart `failover-did local` with this version)")
    stack = os.environ.get(STACK_ENV, "").strip()
    if stack:
        raise UserError(
            f"stack {stack!r} ({STACK_ENV}) has no ConsoleUserPoolId output: it was deployed before the console; "
            "deploy this version (sam build && sam deploy)"
        )
    raise UserError(
        "no console user pool: set FAILOVER_DID_STACK to the deployed stack's name (its ConsoleUserPoolId output "
        f"names the pool), or FAILOVER_DID_LOCAL to the local stack, or {POOL_ID_ENV}"
    )


def _message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message") or error)


@dataclass(frozen=True)
class LocalLogin:
    """The local stack's console sign-in, for its banner."""

    pool: LocalPool
    email: str
    password: str
    generated: bool


def console_environment(endpoint: str, pool: LocalPool) -> dict[str, str]:
    """The console function's Cognito settings on the local stack (the AWS emulation serves the pool's JWKS)."""
    return {
        POOL_ID_ENV: pool.pool_id,
        CLIENT_ID_ENV: pool.client_id,
        JWKS_URL_ENV: f"{endpoint.rstrip('/')}/{pool.pool_id}/.well-known/jwks.json",
    }


def start_local_console(endpoint: str) -> LocalLogin:
    """Create the local stack's pool and its admin (FAILOVER_DID_CONSOLE_PASSWORD, or a generated password),
    and set the console's environment for the webhook containers to inherit."""
    import boto3

    cognito = boto3.client("cognito-idp", endpoint_url=endpoint)
    pool = create_local_pool(cognito)
    password = os.environ.get(PASSWORD_ENV, "")
    generated = not password
    if generated:
        password = generated_password()
    set_local_admin(cognito, pool.pool_id, password)
    os.environ.update(console_environment(endpoint, pool))
    return LocalLogin(pool, LOCAL_ADMIN, password, generated)
