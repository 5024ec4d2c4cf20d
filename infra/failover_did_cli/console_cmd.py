"""`failover-did console add-user EMAIL [--viewer]`: give someone a sign-in to the operator console."""

from __future__ import annotations

import os

import click

from failover_did_cli.console_users import (
    ADMIN_GROUP,
    VIEWER_GROUP,
    UserError,
    add_user,
    find_pool_id,
    generated_password,
)
from failover_did_cli.env import LOCAL_ENV, configure_aws, local_stack_hint


@click.group()
def console() -> None:
    """The operator console's users (a Cognito user pool)."""


@console.command("add-user")
@click.argument("email")
@click.option("--viewer", is_flag=True, help="Read-only: sees every page, changes nothing.  [default: admin]")
def add_user_command(email: str, viewer: bool) -> None:
    """Add EMAIL as a console user: an admin (edits rules, runs drills) or, with --viewer, a reader.

    Against the deployed stack (FAILOVER_DID_STACK), Cognito emails them a temporary password; against the
    local stack (FAILOVER_DID_LOCAL), which sends no email, the temporary password is printed. Either way
    they choose their own at the first sign-in."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    configure_aws()
    local = os.environ.get(LOCAL_ENV, "").strip() or None
    group = VIEWER_GROUP if viewer else ADMIN_GROUP
    temporary = generated_password() if local else None
    try:
        if local is None:
            pool_id = find_pool_id(None, local=False)  # names what to set before any AWS call
        cognito = boto3.client("cognito-idp")
        pool_id = find_pool_id(cognito, local=local is not None)
        add_user(cognito, pool_id, email, group, temporary_password=temporary)
    except UserError as error:
        raise click.ClickException(str(error)) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code == "ResourceNotFoundException":
            raise click.ClickException(f"cannot add {email}: the console's user pool or group: {message}") from error
        raise click.ClickException(f"cannot add {email}: {message}") from error
    except NoRegionError as error:
        raise click.ClickException(
            f"cannot add {email}: no AWS region set (AWS_DEFAULT_REGION, or `aws configure`)"
        ) from error
    except BotoCoreError as error:
        raise click.ClickException(f"cannot add {email}: {local_stack_hint(local) if local else error}") from error
    if temporary:
        click.echo(f"added {email} ({group}) to the local stack's console; temporary password: {temporary}")
        click.echo("  (the local stack sends no email; a new password is chosen at the first sign-in)")
    else:
        click.echo(
            f"added {email} ({group}): Cognito emails them a temporary password, valid 7 days, "
            "which they change at their first sign-in"
        )
