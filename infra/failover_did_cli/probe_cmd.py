"""`failover-did probe TARGET`: probe one destination now, print its state, exit with it."""

from __future__ import annotations

import click

from failover_did.health.probe import DEFAULT_TIMEOUT, ProbeResult, ProbeTarget, State, check_target, probe_sync

EXIT_CODES = {State.UP: 0, State.DOWN: 1, State.DEGRADED: 3, State.UNKNOWN: 4}
"""Exit status by state; 2 is click's usage error (a target that cannot be probed)."""


def format_result(result: ProbeResult) -> str:
    rtt = "-" if result.rtt_ms is None else f"{result.rtt_ms:.1f} ms"
    return f"{result.state.value}  {result.reason}  {rtt}  {result.target}"


@click.command()
@click.argument("target")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=30, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds the whole probe may take (name lookup, connect, retransmissions, answer).",
)
@click.option(
    "--no-tls-verify",
    is_flag=True,
    help="Do not check the TLS certificate (a PBX with a self-signed one; like `tls_verify: false`).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Probe loopback and private addresses too (the deployment's checker does only with "
    "ALLOW_PRIVATE_TARGETS=true); link-local and metadata addresses never.",
)
def probe(target: str, timeout: float, no_tls_verify: bool, allow_private: bool) -> None:
    """Probe TARGET once and print its state.

    TARGET is a SIP URI (sip:pbx.example.com, sip:100@10.0.0.5:5080;transport=tcp, sips:...,
    sip:pbx.example.com;secure=true) probed with OPTIONS, or an http(s):// URL probed with GET.

    Prints `STATE  REASON  RTT  TARGET` and exits 0 when up, 1 when down, 3 when degraded
    (alive but refusing, e.g. 404 or 486), 4 when unknown (the probe could not be made, e.g. an address
    the probing policy refuses; the reason says why).
    """
    try:
        check_target(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TARGET") from None
    spec = ProbeTarget(target, tls_verify=not no_tls_verify)
    result = probe_sync(spec, timeout, allow_private=True if allow_private else None)
    click.echo(format_result(result))
    click.get_current_context().exit(EXIT_CODES[result.state])
