"""`failover-did probe TARGET` (placeholder until the prober lands)."""

import click


@click.command()
@click.argument("target")
def probe(target: str) -> None:
    """Probe TARGET once and print its state."""
    raise click.ClickException("not implemented yet")
