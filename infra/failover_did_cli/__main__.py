from failover_did_cli.main import cli

cli()
