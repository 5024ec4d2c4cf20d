"""FAILOVER_DID_LOCAL set wrong: one line saying what is wrong and what to do, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from failover_did_cli.env import LOCAL_SERVER_NAME
from failover_did_cli.local_stack import free_port
from failover_did_cli.main import cli

CLI = str(Path(sys.executable).with_name("failover-did"))


def run(local: str, *args: str) -> tuple[int, str]:
    """The command as a user runs it, in its own process (it aims boto3 at the stack for its lifetime)."""
    env = {**os.environ, "FAILOVER_DID_LOCAL": local}
    env.pop("FAILOVER_DID_STACK", None)
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    return result.returncode, output


@pytest.fixture
def server_named() -> Iterator[Callable[[str], str]]:
    servers: list[HTTPServer] = []

    def start(name: str) -> str:
        class Handler(BaseHTTPRequestHandler):
            server_version = name
            sys_version = ""

            def do_GET(self) -> None:
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(
    ("value", "command"),
    [
        ("127.0.0.1:3418", ("rules", "list")),
        ("localhost", ("status",)),
        ("http://[x", ("events",)),
        ("ftp://127.0.0.1:3001", ("rules", "list")),
    ],
)
def test_a_value_that_is_no_url_is_named_with_the_form_to_use(value: str, command: tuple[str, ...]) -> None:
    code, output = run(value, *command)
    assert code == 1
    assert output.count("\n") == 0
    assert repr(value) in output
    assert "http://" in output


def test_no_scheme_suggests_the_same_address_with_one() -> None:
    _, output = run("127.0.0.1:3418", "rules", "list")
    assert "FAILOVER_DID_LOCAL=http://127.0.0.1:3418" in output


@pytest.mark.parametrize("command", [("rules", "list"), ("status",), ("events",)])
def test_a_stopped_stack_asks_whether_it_is_running(command: tuple[str, ...]) -> None:
    code, output = run(f"http://127.0.0.1:{free_port()}", *command)
    assert code == 1
    assert output.count("\n") == 0
    assert "is `failover-did local` running?" in output


def test_the_webhook_port_is_told_apart_from_the_aws_emulation(server_named: Callable[[str], str]) -> None:
    url = server_named(LOCAL_SERVER_NAME)
    port = int(url.rsplit(":", 1)[1])
    code, output = run(url, "rules", "list")
    assert code == 1
    assert "is the local stack's webhook" in output
    assert f"FAILOVER_DID_LOCAL=http://127.0.0.1:{port + 1}" in output


def test_another_server_is_not_taken_for_the_emulation(server_named: Callable[[str], str]) -> None:
    url = server_named("nginx")
    code, output = run(url, "rules", "list")
    assert code == 1
    assert "is not the AWS emulation" in output


def test_version_names_the_installed_release() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"failover-did {version('failover-did')}"
