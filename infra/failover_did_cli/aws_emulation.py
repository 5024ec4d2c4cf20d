"""The local stack's AWS emulation in a process of its own: moto's server on loopback, with DynamoDB made
atomic per request. Its own process keeps moto's per-request CPU off the webhook's interpreter lock.

    python -m failover_did_cli.aws_emulation PORT

It ends when the process that started it does (it never outlives its `failover-did local`)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from failover_did_cli.local_stack import AWS_HOST, serialise_dynamodb


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    (port,) = argv
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request, no start-up banner
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    serialise_dynamodb()
    moto_main(["--host", AWS_HOST, "--port", port])


if __name__ == "__main__":
    main(sys.argv[1:])
