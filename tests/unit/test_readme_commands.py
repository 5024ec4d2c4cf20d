"""Every `failover-did` command the README shows works as written after the README's set-up (`make install`,
which puts the command in .venv/bin, not on PATH): each is spelled .venv/bin/failover-did, and each
subcommand and option it uses exists (the command's own --help says so)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from failover_did_cli.main import cli

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = ".venv/bin/failover-did"
_SHELL_BLOCK = re.compile(r"^[ \t]*```(?:sh|bash|shell)\n(.*?)^[ \t]*```", re.M | re.S)
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_PLACEHOLDER = re.compile(r"<[^<>]*>")  # `<auth token>` and the like stand for one value


def readme_commands() -> list[list[str]]:
    """The words after `failover-did` of each README shell line that runs it (env assignments skipped)."""
    commands = []
    for block in _SHELL_BLOCK.findall(README.read_text()):
        for raw in block.splitlines():
            line = _PLACEHOLDER.sub("VALUE", raw.split(" #", 1)[0]).replace("[", "").replace("]", "")
            if "failover-did" not in line:
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token.strip(";&|"):
                    words.append(token)
                    continue
                while words and _ASSIGNMENT.match(words[0]):
                    words.pop(0)
                if words and words[0].endswith("failover-did"):
                    commands.append(words)
                words = []
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w[:3]) for w in COMMANDS])
def test_each_is_spelled_as_make_install_puts_it(words: list[str]) -> None:
    assert words[0] == COMMAND, f"{' '.join(words)}: not on PATH after `make install`; write {COMMAND}"


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w[:3]) for w in COMMANDS])
def test_each_subcommand_and_option_exists(words: list[str]) -> None:
    command: click.Command = cli
    path: list[str] = []
    args = words[1:]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"{' '.join(words)}: no command {' '.join([*path, args[0]])!r}"
        command, path, args = sub, [*path, args[0]], args[1:]
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    known = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    known |= {"--help", "-h", "--version"}
    for word in args:
        if word.startswith("-") and word != "-":
            option = word.split("=", 1)[0]
            assert option in known, f"{' '.join(words)}: {' '.join(path) or 'failover-did'} has no option {option}"
