"""`failover-did console add-user | users | remove-user`: who may sign in to the operator console."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from failover_did_cli.console_users import (
    ADMIN_GROUP,
    VIEWER_GROUP,
    UserError,
    add_user,
    find_pool_id,
    generated_password,
    list_users,
    remove_user,
)
from failover_did_cli.env import LOCAL_ENV, configure_aws, local_stack_hint

T = TypeVar("T")
SIGN_IN_STATES = {"CONFIRMED": "has signed in", "FORCE_CHANGE_PASSWORD": "not signed in yet"}


@click.group()
def console() -> None:
    """The operator console's users (a Cognito user pool)."""


def local_endpoint() -> str | None:
    return os.environ.get(LOCAL_ENV, "").strip() or None


@contextmanager
def cognito_errors(doing: str) -> Iterator[None]:
    """Each failure of a console command as one line starting with what it was doing."""
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    local = local_endpoint()
    try:
        yield
    except UserError as error:
        raise click.ClickException(str(error)) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code == "ResourceNotFoundException":
            raise click.ClickException(f"cannot {doing}: the console's user pool or group: {message}") from error
        raise click.ClickException(f"cannot {doing}: {message}") from error
    except NoRegionError as error:
        region = "no AWS region set (AWS_DEFAULT_REGION, or `aws configure`)"
        raise click.ClickException(f"cannot {doing}: {region}") from error
    except BotoCoreError as error:
        raise click.ClickException(f"cannot {doing}: {local_stack_hint(local) if local else error}") from error


def with_pool(operation: Callable[[Any, str], T]) -> T:
    """`operation(cognito, pool_id)` on the console's pool: the deployed stack's or the local stack's."""
    import boto3

    configure_aws()
    local = local_endpoint()
    if local is None:
        find_pool_id(None, local=False)  # names what to set before any AWS call
    cognito = boto3.client("cognito-idp")
    return operation(cognito, find_pool_id(cognito, local=local is not None))


@console.command("add-user")
@click.argument("email")
@click.option("--viewer", is_flag=True, help="Read-only: sees every page, changes nothing.  [default: admin]")
def add_user_command(email: str, viewer: bool) -> None:
    """Add EMAIL as a console user: an admin (edits rules, runs drills) or, with --viewer, a reader.

    Against the deployed stack (FAILOVER_DID_STACK), Cognito emails them a temporary password; against the
    local stack (FAILOVER_DID_LOCAL), which sends no email, the temporary password is printed. Either way
    they choose their own at the first sign-in."""
    group = VIEWER_GROUP if viewer else ADMIN_GROUP
    temporary = generated_password() if local_endpoint() else None
    with cognito_errors(f"add {email}"):
        with_pool(lambda cognito, pool_id: add_user(cognito, pool_id, email, group, temporary_password=temporary))
    if temporary:
        click.echo(f"added {email} ({group}) to the local stack's console; temporary password: {temporary}")
        click.echo("  (the local stack sends no email; a new password is chosen at the first sign-in)")
    else:
        click.echo(
            f"added {email} ({group}): Cognito emails them a temporary password, valid 7 days, "
            "which they change at their first sign-in"
        )


@console.command("users")
def users_command() -> None:
    """List the console's users: email, role, and whether they have signed in yet."""
    with cognito_errors("list the console's users"):
        found = with_pool(list_users)
    for user in found:
        role = "/".join(user.groups) or "no role (sees no page)"
        state = SIGN_IN_STATES.get(user.status, user.status.lower())
        click.echo(f"{user.email}  {role}  {state}{'' if user.enabled else '  DISABLED'}")
    click.echo(f"{len(found)} console user(s)")


@console.command("remove-user")
@click.argument("email")
@click.option("--yes", "-y", is_flag=True, help="Remove without asking (for scripts).")
def remove_user_command(email: str, yes: bool) -> None:
    """Remove EMAIL from the console: signed out everywhere, then deleted.

    Asks first; --yes skips the question (without a terminal to ask on, --yes is required). They can change
    nothing from then on; a read-only page they already have open can be read until its sign-in token
    expires (at most 60 minutes)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"not removing {email}: no terminal to confirm on; pass --yes to remove them")
        if not click.confirm(f"Remove {email} from the console?"):
            raise click.ClickException(f"not removed: {email} can still sign in")
    with cognito_errors(f"remove {email}"):
        with_pool(lambda cognito, pool_id: remove_user(cognito, pool_id, email))
    click.echo(f"removed {email}: signed out everywhere; they can change nothing from now on")
