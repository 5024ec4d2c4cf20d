"""`failover-did rules validate FILE` on hostile and borderline files: one line per problem naming the file
once, a bounded read of whatever FILE is, and the warnings (private addresses, ring time) on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from failover_did.rules.loading import MAX_FILE_BYTES
from failover_did.settings import settings
from failover_did_cli import env
from failover_did_cli.local_stack import free_port
from failover_did_cli.main import cli


@pytest.fixture(autouse=True)
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (env.LOCAL_ENV, env.STACK_ENV, "ALLOW_PRIVATE_TARGETS"):
        monkeypatch.delenv(name, raising=False)
    settings.cache_clear()


def validate(path: Path) -> Result:
    return CliRunner().invoke(cli, ["rules", "validate", str(path)])


def test_broken_yaml_names_the_file_once(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text('numbers:\n  "+14155550100": {primary: {target: "+1415555011\n')
    result = validate(bad)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{bad}: line ") and line.count(str(bad)) == 1 and "invalid YAML" in line


def test_a_yaml_bomb_is_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["lol","lol"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nnumbers: *c\n')
    result = validate(bomb)
    assert result.exit_code == 1
    assert result.stderr == (
        f"{bomb}: line 1, column 4: refused: anchors and aliases (&name, *name) are not accepted in a rules "
        "file; write each rule out in full\n"
    )


def test_a_file_over_the_limit_is_refused_after_reading_only_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(MAX_FILE_BYTES * 4)  # a sparse file: its size is all that matters
    result = validate(big)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {big}: the file is {MAX_FILE_BYTES * 4:,} bytes; a rules file may be at most 4 MiB "
        f"({MAX_FILE_BYTES:,} bytes)\n"
    )


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    rules = 'numbers:\n  "+14155550100": {primary: {target: "+14155550111"}}\n'
    exact = tmp_path / "exact.yaml"
    exact.write_text(rules + "#" * (MAX_FILE_BYTES - len(rules)))
    result = validate(exact)
    assert result.exit_code == 0, result.output
    assert "1 number(s) OK" in result.stdout


def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    result = validate(Path("/dev/zero"))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: /dev/zero: the file is more than 4 MiB; a rules file may be at most 4 MiB (4,194,304 bytes)\n"
    )


PRIVATE = (
    'numbers:\n  "+14155550100":\n    primary: {target: "sip:desk@10.0.0.7", timeout: 60}\n'
    '    failover: [{target: "+14155550111", timeout: 60, health: "http://127.0.0.1:8080/ok"}]\n'
)


def test_private_addresses_are_warnings_without_a_stack(tmp_path: Path) -> None:
    path = tmp_path / "private.yaml"
    path.write_text(PRIVATE)
    result = validate(path)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f'{path}: warning: numbers."+14155550100": the cascade can ring unanswered for 130 s (60+5 + 60+5 s: '
        "each tier's timeout plus about 5 s that Twilio adds), more than 120 s; callers' networks typically "
        "give up after 90-180 s, so a caller may hang up before the last tiers or the final message",
        f'{path}: warning: numbers."+14155550100".primary.target: "sip:desk@10.0.0.7": 10.0.0.7 is a private '
        "or reserved address; it will be refused in AWS unless ALLOW_PRIVATE_TARGETS is set",
        f'{path}: warning: numbers."+14155550100".failover[0].health: "http://127.0.0.1:8080/ok": 127.0.0.1 is '
        "a loopback address (the checker's own machine); it will be refused in AWS unless "
        "ALLOW_PRIVATE_TARGETS is set",
    ]


@pytest.mark.parametrize("variable", [env.LOCAL_ENV, "ALLOW_PRIVATE_TARGETS"])
def test_private_addresses_are_not_warned_about_where_they_are_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    stopped_stack = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(variable, stopped_stack if variable == env.LOCAL_ENV else "true")
    path = tmp_path / "private.yaml"
    path.write_text(PRIVATE)
    result = validate(path)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    if variable == env.LOCAL_ENV:  # no stack runs there: said once, and the file is judged alone
        assert lines.pop(0).startswith(f"{path}: could not reach the stack, judged the file alone: ")
    (ring_time,) = lines
    assert "ring unanswered for 130 s" in ring_time


def test_metadata_address_is_refused_even_by_validate(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text(
        'numbers:\n  "+14155550100":\n    primary: {target: "+14155550111", health: "http://169.254.169.254/"}\n'
    )
    result = validate(path)
    assert result.exit_code == 1
    assert result.stderr == (
        f'{path}: numbers."+14155550100".primary.health: "http://169.254.169.254/": 169.254.169.254 is a '
        "link-local address (cloud metadata lives there); it is never probed\n"
    )


def test_apply_reads_rules_with_the_deployments_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from failover_did_cli.rules_cmd import read_rules

    path = tmp_path / "loopback.yaml"
    path.write_text('numbers:\n  "+14155550100": {primary: {target: "sip:desk@127.0.0.1:5070"}}\n')
    with pytest.raises(SystemExit):
        read_rules(path)  # bound for AWS: refused
    assert "it is probed only where ALLOW_PRIVATE_TARGETS=true" in capsys.readouterr().err
    monkeypatch.setenv(env.LOCAL_ENV, "http://127.0.0.1:3001")  # `rules apply` to a local stack
    assert list(read_rules(path)) == ["+14155550100"]
