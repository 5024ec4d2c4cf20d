"""`failover-did local`: run the service on this machine with no AWS account and no Docker."""

from __future__ import annotations

import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import click

from failover_did_cli.env import LOCAL_ENV
from failover_did_cli.local_stack import (
    DEFAULT_CONTAINERS,
    DEFAULT_PORT,
    LocalStack,
    PortBusy,
    demo_rules_path,
    is_loopback,
    masked,
)

CLI = ".venv/bin/failover-did"  # as the README's set-up leaves it: `make install` puts nothing on PATH
SHOWN_NUMBERS = 5
LOCAL_PUBLISH_THREADS = 2
"""The emulation answering calls is the one the fallbacks are written to, and its CPU is what they cost:
two at a time overlap our side of a write with its side, and a call's read waits behind at most two."""


def numbers_summary(numbers: list[str]) -> str:
    """The loaded numbers in one short line: all of a few, the first few of many."""
    if len(numbers) <= SHOWN_NUMBERS:
        return f"{len(numbers)} number(s) {', '.join(numbers)}".rstrip()
    first = ", ".join(numbers[: SHOWN_NUMBERS - 2])
    return f"{len(numbers)} numbers ({first}, ... and {len(numbers) - SHOWN_NUMBERS + 2} more: `{CLI} rules list`)"


def restart_command(
    stack: LocalStack, port: int, aws_port: int | None, rules_path: Path | None, public_url: str
) -> str:
    """The command that starts this stack again behind a tunnel: the same ports and rules as this run."""
    parts = [CLI, "local"]
    if port != DEFAULT_PORT:
        parts += ["--port", str(stack.port)]  # --port 0 picked this one; the tunnel points at it
    if aws_port is not None:
        parts += ["--aws-port", str(stack.aws_port)]
    if rules_path is not None:
        parts += ["--rules", str(rules_path)]
    return " ".join([*parts, "--public-url", public_url])


def host_warning(host: str) -> str | None:
    """What to say when the webhook listens beyond this machine; None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"warning: --host {host} lets other machines reach the webhook (it checks Twilio signatures); "
        "the AWS emulation has no authentication and listens on 127.0.0.1 only"
    )


def echo_now(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port of the voice webhook (0 picks a free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the voice webhook listens on. The AWS emulation listens on 127.0.0.1 whatever this is.",
)
@click.option("--aws-port", type=int, default=None, help="Port of the AWS emulation  [default: PORT+1]")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rules file loaded at start  [default: the bundled demo rules]",
)
@click.option("--public-url", help="The https URL Twilio reaches this through (a tunnel), used to check signatures.")
@click.option(
    "--health-interval",
    type=click.FloatRange(min=0.2),
    default=60.0,
    show_default=True,
    help="Seconds between health checks of the rules' destinations.",
)
@click.option(
    "--containers",
    type=click.IntRange(min=0, max=32),
    default=DEFAULT_CONTAINERS,
    show_default=True,
    help="Webhook containers (processes) answering calls at once, as AWS runs many of one Lambda; "
    "0 runs the handler in this process, one call at a time.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also print the Lambda's JSON logs and metrics.")
def local(
    port: int,
    host: str,
    aws_port: int | None,
    rules_path: Path | None,
    public_url: str | None,
    health_interval: float,
    containers: int,
    verbose: bool,
) -> None:
    """Run the voice webhook and its AWS emulation (moto) in this process."""
    from failover_did_cli.fallback_publish import NotConfigured, Publisher, config_from_env, publish_after_apply
    from failover_did_cli.rules_cmd import SYMBOL, Applied, apply_with_audit, fallback_line, read_rules

    stack = LocalStack(
        host=host,
        port=port,
        aws_port=aws_port,
        public_url=public_url,
        verbose=verbose,
        health_interval=health_interval,
        echo=echo_now,
        containers=containers,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    rules_file = rules_path or demo_rules_path()
    # The file is read and judged while the emulation starts (its tables are new: nothing stored to judge
    # against); the local stack probes loopback and private addresses, so they are allowed.
    reading = ThreadPoolExecutor(1, thread_name_prefix="rules-file")
    judged = reading.submit(read_rules, rules_file, allow_private=True)
    reading.shutdown(wait=False)
    try:
        stack.start()
        stack.start_containers()
        # as `rules apply` stores (start-up is not audited)
        changes, _ = apply_with_audit(rules_file, prune=False, judged_alone=judged.result())
        stack.listen()  # only now: a call never finds the rules still loading
        stack.serve_in_background()
    except PortBusy as busy:
        stack.stop()
        raise click.ClickException(str(busy)) from busy
    except BaseException:
        stack.stop()
        raise
    loaded = [c.number for c in changes if c.action in ("added", "changed", "unchanged")]

    if stack.token_generated:
        token_shown, token_note = stack.token, "generated for this run; set TWILIO_AUTH_TOKEN to choose"
    else:
        token_shown, token_note = masked(stack.token), "from TWILIO_AUTH_TOKEN, not shown"
    login = stack.console_login
    if login.generated:
        password_shown, password_note = (
            login.password,
            "generated for this run; set FAILOVER_DID_CONSOLE_PASSWORD to choose",
        )
    else:
        password_shown, password_note = masked(login.password), "from FAILOVER_DID_CONSOLE_PASSWORD, not shown"
    tunnel_host = public_url or "https://<your-tunnel-host>"
    click.echo(
        f"""
failover-did local is running (Ctrl-C stops it)

  Voice URL      {stack.voice_url}   (POST, Twilio-signed)
  Auth token     {token_shown}   ({token_note})
  Console        {stack.console_url}   (a browser; `{CLI} console add-user EMAIL` adds users)
  Console login  {login.email} / {password_shown}   ({password_note})
  Rules          {rules_file}: {numbers_summary(loaded)}
  Health checks  every {health_interval:g} s (SIP OPTIONS / HTTP; a dead tier is skipped)
  AWS emulation  {stack.aws_endpoint}   (moto, loopback only; tables {", ".join(sorted(stack.table_names.values()))})
  Fallback URLs  {stack.fallback_base_url}<key>.xml   (static TwiML per number, bucket {stack.fallback_bucket})

  Other commands against this stack:   export {LOCAL_ENV}={stack.aws_endpoint}
      {CLI} rules list | rules show NUMBER | rules apply FILE | simulate NUMBER | drill NUMBER
  (that variable also points `rules apply` at the fallback bucket; `rules show NUMBER` prints a number's URL)

  From a real Twilio number: start a tunnel to port {stack.port} (e.g. `cloudflared tunnel --url http://localhost:{stack.port}`
  or `ngrok http {stack.port}`), restart with your account's token and the tunnel's URL:
      TWILIO_AUTH_TOKEN=<auth token> {restart_command(stack, port, aws_port, rules_path, tunnel_host)}
  and set the number's Voice URL to {tunnel_host.rstrip("/")}/voice (HTTP POST).
""".rstrip()
        + "\n"
    )
    warning = host_warning(host)
    if warning:
        click.echo(f"  {warning}")
    for change in changes:
        if change.action not in ("added", "changed", "unchanged"):
            click.echo(f"  {SYMBOL[change.action]} {change.number} {change.action}")
    sys.stdout.flush()
    # The static fallbacks are for when the webhook fails: the stack answers (and says so) while they are
    # published, and their outcome follows the banner.
    try:
        try:
            results = publish_after_apply(changes, Publisher(config_from_env()), threads=LOCAL_PUBLISH_THREADS)
            applied = Applied(changes, results)
        except NotConfigured as reason:
            applied = Applied(changes, not_published=str(reason))
    except BaseException:
        stack.stop()
        raise
    shown = [result for result in applied.fallbacks if fallback_line(result)]
    many = len(shown) > SHOWN_NUMBERS
    for result in shown:
        if not many or result.action == "failed":
            click.echo(f"  {result.number}{fallback_line(result)}")
    if applied.not_published:
        click.echo(f"  no fallback published: {applied.not_published}")
    else:
        published = sum(result.action != "failed" for result in shown)
        click.echo(f"  fallbacks: {published} published (`{CLI} rules show NUMBER` prints a number's URL)")
    sys.stdout.flush()
    stack.start_health_checks()
    stack.start_event_log()
    stack.start_notice_log()
    try:
        stack.wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        stack.stop()
