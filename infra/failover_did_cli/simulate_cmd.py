"""`failover-did simulate`: play one call against a voice webhook the way Twilio would."""

from __future__ import annotations

import os

import click

from failover_did.drill.simulator import describe
from failover_did.settings import settings
from failover_did_cli.args import NUMBER
from failover_did_cli.callsim import VOICE_URL_HELP, TwilioSimulator, find_voice_url, marked_as_test

# What each word makes the simulated Dial report: DialCallStatus, SIP code, bridged
OUTCOMES: dict[str, tuple[str, int | None, bool | None]] = {
    "answered": ("completed", None, True),
    "busy": ("busy", None, None),
    "no-answer": ("no-answer", None, None),
    "failed": ("failed", None, None),
    "canceled": ("canceled", None, None),
    "voicemail": ("completed", None, False),  # answered by a machine, never bridged (screened tiers)
}


def parse_outcome(word: str) -> tuple[str, int | None, bool | None]:
    if word in OUTCOMES:
        return OUTCOMES[word]
    if word.isdigit() and len(word) == 3 and 300 <= int(word) <= 699:
        return ("busy" if word in ("486", "600") else "failed", int(word), None)
    raise click.BadParameter(f"{word!r}: use one of {', '.join(OUTCOMES)} or a SIP code 300-699", param_hint="OUTCOME")


@click.command()
@click.argument("number", type=NUMBER)
@click.argument("outcomes", nargs=-1)
@click.option("--url", help=VOICE_URL_HELP)
@click.option("--caller", default="+14155550999", show_default=True, help="The caller's number (From).")
def simulate(number: str, outcomes: tuple[str, ...], url: str | None, caller: str) -> None:
    """Call NUMBER through the webhook at --url, ending each dialed leg with the next OUTCOME
    (answered, busy, no-answer, failed, canceled, voicemail, or a SIP code such as 503).
    The webhook is the local stack's that FAILOVER_DID_LOCAL points at, unless --url names one.
    Requests are signed with TWILIO_AUTH_TOKEN, as `failover-did local` prints it. The call is marked as a
    test (`?test=1` on the Voice URL): it counts neither as a health check nor against the monthly budget."""
    token = os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise click.UsageError("set TWILIO_AUTH_TOKEN to the token the webhook checks signatures with")
    plan = [parse_outcome(word) for word in outcomes]
    url = find_voice_url(url)
    call = TwilioSimulator(marked_as_test(url), token, account_sid=settings().account_sid).call(number, caller)
    try:
        reply = call.start()
    except OSError as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from error
    click.echo(f"call {call.sid} from {caller} to {number}")
    click.echo(f"  -> {describe(reply)}")
    for word, (status, code, bridged) in zip(outcomes, plan, strict=True):
        if reply.dial is None:
            break
        click.echo(f"  <- {word}")
        reply = call.dial_ended(status, sip_code=code, bridged=bridged)
        click.echo(f"  -> {describe(reply)}")
    if reply.status != 200:
        raise SystemExit(1)
    if reply.dial is not None:
        click.echo("  (still ringing: give more outcomes to go on)")
        return
    # The call is over: Twilio would now post the number's call-status callback, which closes the call log's
    # record (a test call: listed by `calls --tests`, never noticed).
    if reply.records:  # nobody speaks after the beep: Twilio says there is no recording
        call.recording_stored(0)
    ended = call.hang_up(0)
    click.echo(f"  <- call over (status callback: HTTP {ended.status})")
