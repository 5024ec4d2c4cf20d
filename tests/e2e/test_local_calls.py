"""Whole calls through `failover-did local`, driven the way Twilio drives them (signed posts that
follow each Dial's action URL), the rules commands against the running stack, and what the stack shows
and exposes (a masked token, malformed requests refused, the AWS emulation on loopback only)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from failover_did_cli.local_stack import free_port
from tests.e2e.conftest import CLI, TOKEN, RunningStack, start_local, stop_local

pytestmark = pytest.mark.e2e

CASCADE = ["sip:frontdesk@pbx.example.com", "+14155550111", "sip:oncall@dr.example.net"]
FAILURES = {
    "timeout": {"status": "no-answer"},
    "busy": {"status": "busy"},
    "failed": {"status": "failed"},
    "503": {"status": "failed", "sip_code": 503},
}


@pytest.mark.parametrize("trigger", sorted(FAILURES))
def test_call_walks_primary_tier1_tier2_then_final(local_stack: RunningStack, trigger: str) -> None:
    call = local_stack.simulator().call("+14155550100")
    assert call.start().dial is not None
    for _ in CASCADE:
        failure = dict(FAILURES[trigger])
        reply = call.dial_ended(str(failure.pop("status")), **failure)  # type: ignore[arg-type]
    assert call.dialed == CASCADE
    assert [r.dial.timeout for r in call.replies if r.dial] == [15, 20, 30]
    assert reply.dial is None and reply.say == "Sorry, nobody can take your call." and reply.records
    assert reply.hangs_up


def test_answer_stops_the_cascade(local_stack: RunningStack) -> None:
    call = local_stack.simulator().call("+14155550100")
    call.start()
    call.dial_ended("busy")
    reply = call.dial_ended("completed", bridged=True)
    assert call.dialed == CASCADE[:2] and reply.verbs == ("Hangup",)


def test_caller_hang_up_dials_nobody_more(local_stack: RunningStack) -> None:
    call = local_stack.simulator().call("+14155550100")
    call.start()
    assert call.dial_ended("canceled").verbs == ("Hangup",)
    call2 = local_stack.simulator().call("+14155550100")
    call2.start()
    assert call2.dial_ended("no-answer", caller_gone=True).verbs == ("Hangup",)
    assert call.dialed == call2.dialed == CASCADE[:1]


def test_number_whose_triggers_exclude_timeouts(local_stack: RunningStack) -> None:
    rings_out = local_stack.simulator().call("+14155550200")
    rings_out.start()
    reply = rings_out.dial_ended("no-answer")
    assert rings_out.dialed == ["sip:sales@pbx.example.com"] and reply.dial is None and reply.hangs_up
    server_error = local_stack.simulator().call("+14155550200")
    server_error.start()
    server_error.dial_ended("failed", sip_code=502)
    server_error.dial_ended("busy")
    assert server_error.dialed == ["sip:sales@pbx.example.com", "+14155550222", "+14155550223"]


def test_sip_code_trigger_alone(local_stack: RunningStack) -> None:
    only_503 = local_stack.simulator().call("+14155550300")
    only_503.start()
    only_503.dial_ended("failed", sip_code=503)
    reply = only_503.dial_ended("busy", sip_code=486)
    assert only_503.dialed == ["sip:desk@pbx.example.com", "+14155550333"] and reply.dial is None


def test_forged_and_unsigned_requests_get_403(local_stack: RunningStack) -> None:
    sim = local_stack.simulator()
    call = sim.call("+14155550100")
    params = {**call.base_params, "CallStatus": "ringing"}
    assert sim.post(local_stack.voice_url, params, signature="").status == 403
    assert sim.post(local_stack.voice_url, params, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=").status == 403
    good = sim.validator.compute_signature(local_stack.voice_url, params)
    tampered = {**params, "To": "+14155550200"}
    assert sim.post(local_stack.voice_url, tampered, signature=good).status == 403
    action = f"http://127.0.0.1:{local_stack.port}/voice/action?tier=0&hop=1"
    assert sim.post(action, {**params, "DialCallStatus": "busy"}, signature=good).status == 403
    assert "403" in local_stack.output()


def test_unknown_number_is_told_and_hung_up(local_stack: RunningStack) -> None:
    reply = local_stack.simulator().call("+14155550900").start()
    assert reply.status == 200 and reply.dial is None and reply.hangs_up


def test_rules_commands_against_the_running_stack(local_stack: RunningStack, tmp_path: Path) -> None:
    listed = local_stack.cli("rules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "+14155550100" in listed.stdout and "3 number(s)" in listed.stdout
    shown = local_stack.cli("rules", "show", "+14155550300")
    assert shown.returncode == 0 and "sip:desk@pbx.example.com" in shown.stdout and "# version 1" in shown.stdout

    new = tmp_path / "more.yaml"
    new.write_text('numbers:\n  "+14155550400": {primary: {target: "+14155550444", timeout: 12}}\n')
    applied = local_stack.cli("rules", "apply", str(new))
    assert applied.returncode == 0, applied.stderr
    assert "+ +14155550400 added (version 1)" in applied.stdout
    assert "! +14155550100 kept" in applied.stdout
    assert "= +14155550400 unchanged (version 1)" in local_stack.cli("rules", "apply", str(new)).stdout

    call = local_stack.simulator().call("+14155550400")
    reply = call.start()
    assert reply.dial is not None and reply.dial.targets == ("+14155550444",) and reply.dial.timeout == 12

    assert local_stack.cli("rules", "delete", "+14155550400", "--yes").returncode == 0
    missing = local_stack.cli("rules", "show", "+14155550400")
    assert missing.returncode == 1 and "no rule for +14155550400" in missing.stderr


def test_validate_refuses_emergency_and_loop_targets(local_stack: RunningStack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'numbers:\n  "+14155550100":\n    primary: {target: "+14155550111"}\n'
        '    failover:\n      - {target: "+1911"}\n      - {target: "+14155550100"}\n'
    )
    result = local_stack.cli("rules", "validate", str(bad))
    assert result.returncode == 1
    assert '"+1911"' in result.stderr and "emergency" in result.stderr
    assert '"+14155550100"' in result.stderr and "loop" in result.stderr
    applied = local_stack.cli("rules", "apply", str(bad))
    assert applied.returncode == 1 and "emergency" in applied.stderr
    assert "sip:frontdesk@pbx.example.com" in local_stack.cli("rules", "show", "+14155550100").stdout


def test_local_with_no_rules_file_loads_the_demo(tmp_path: Path) -> None:
    stack = start_local(tmp_path, rules=None)
    try:
        assert "demo-rules.yaml: 2 number(s)" in stack.output()
        reply = stack.simulator().call("+14155550100").start()
        assert reply.dial is not None and reply.dial.targets == ("sip:frontdesk@pbx.example.com",)
    finally:
        stop_local(stack)


def test_simulate_command_walks_a_call(local_stack: RunningStack) -> None:
    env = {**local_stack.env, "TWILIO_AUTH_TOKEN": TOKEN}
    result = subprocess.run(
        [CLI, "simulate", "+14155550100", "503", "no-answer", "busy"],  # the Voice URL from FAILOVER_DID_LOCAL
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[1:] == [
        "-> dial sip:frontdesk@pbx.example.com for 15 s",
        "<- 503",
        "-> dial +14155550111 for 20 s",
        "<- no-answer",
        "-> dial sip:oncall@dr.example.net for 30 s",
        "<- busy",
        "-> say 'Sorry, nobody can take your call.'; record voicemail; hang up",
        "<- call over (status callback: HTTP 200)",
    ]
    sid = result.stdout.split()[1]
    listed = local_stack.cli("calls", "+14155550100", "--tests", "--json")
    assert listed.returncode == 0, listed.stderr
    [logged] = [c for c in json.loads(listed.stdout) if c["call_sid"] == sid]
    assert logged["outcome"] == "final" and [t["outcome"] for t in logged["tiers"]] == ["failed", "no-answer", "busy"]
    assert sid not in local_stack.cli("calls", "+14155550100", "--json").stdout  # test calls hidden by default
    forged = subprocess.run(
        [CLI, "simulate", "+14155550100", "--url", local_stack.voice_url],
        env={**env, "TWILIO_AUTH_TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert forged.returncode == 1 and "HTTP 403" in forged.stdout


@pytest.mark.parametrize("command", [["simulate", "+14155550100"], ["drill", "+14155550100"]])
def test_webhook_commands_say_in_one_line_when_the_local_stack_is_not_there(
    local_stack: RunningStack, command: list[str]
) -> None:
    stopped = f"http://127.0.0.1:{free_port()}"
    webhook = f"http://127.0.0.1:{local_stack.port}"
    for endpoint, says in ((stopped, "is `failover-did local` running?"), (webhook, "is the local stack's webhook")):
        env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "FAILOVER_DID_LOCAL": endpoint}
        result = subprocess.run([CLI, *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_failover_shows_in_events_and_status(local_stack: RunningStack, tmp_path: Path) -> None:
    call = local_stack.simulator().call("+14155550100")
    call.start()
    call.dial_ended("failed", sip_code=503)
    listed = local_stack.cli("events", "+14155550100", "--since", "10m")
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if call.sid in row]
    assert "failover" in line and "tier 0 -> tier 1 +14155550111 (503)" in line
    status = local_stack.cli("status", "+14155550100")
    assert status.returncode == 0, status.stderr
    assert "Protected" in status.stdout and "to tier 1" in status.stdout

    new = tmp_path / "same-pbx.yaml"
    new.write_text(
        'numbers:\n  "+14155550500":\n    primary: {target: "sip:a@pbx.example.com"}\n'
        '    failover: [{target: "sip:b@pbx.example.com"}]\n'
    )
    warned = local_stack.cli("rules", "validate", str(new))
    assert warned.returncode == 0 and "no resilience" in warned.stderr
    assert local_stack.cli("rules", "apply", str(new)).returncode == 0
    at_risk = local_stack.cli("status", "+14155550500")
    assert "At risk" in at_risk.stdout and "primary's host pbx.example.com" in at_risk.stdout
    unknown = local_stack.cli("status", "+14155550599")
    assert unknown.returncode == 1 and "no rule for +14155550599" in unknown.stderr


def test_local_stack_prints_each_event_as_it_happens(local_stack: RunningStack) -> None:
    call = local_stack.simulator().call("+14155550200")
    call.start()
    call.dial_ended("failed", sip_code=502)
    deadline = time.monotonic() + 10
    expected = f"event: +14155550200 failover: tier 0 -> tier 1 +14155550222 (5xx), call {call.sid}"
    while expected not in local_stack.output():
        assert time.monotonic() < deadline, local_stack.output()
        time.sleep(0.2)


def test_without_verbose_no_lambda_json_log_appears(local_stack: RunningStack) -> None:
    """A forged request makes the handler log a warning; the console still shows only the stack's lines."""
    assert local_stack.simulator().post(local_stack.voice_url, {"To": "+14155550100"}, signature="forged").status == 403
    call = local_stack.simulator().call("+14155550100")
    call.start()
    call.dial_ended("failed", sip_code=503)
    deadline = time.monotonic() + 10
    while f"call {call.sid}" not in local_stack.output():  # the event line: everything before it is printed
        assert time.monotonic() < deadline, local_stack.output()
        time.sleep(0.2)
    lines = local_stack.output().splitlines()
    assert any("-> 403" in line for line in lines)
    assert not [line for line in lines if line.lstrip().startswith("{")], local_stack.output()


def test_banner_masks_a_supplied_auth_token(local_stack: RunningStack) -> None:
    banner = local_stack.output()
    assert TOKEN not in banner
    assert f"Auth token     {TOKEN[:4]}... ({len(TOKEN)} characters)   (from TWILIO_AUTH_TOKEN, not shown)" in banner


@pytest.mark.parametrize(
    ("length", "status", "says"),
    [
        ("-1", 400, "Content-Length '-1' is not a number of bytes"),
        ("abc", 400, "Content-Length 'abc' is not a number of bytes"),
        ("", 400, "Content-Length '' is not a number of bytes"),
        (str(200 * 1024 * 1024), 413, "Content-Length 209715200 is over the 1048576-byte limit"),
    ],
)
def test_the_running_stack_refuses_a_bad_content_length_and_goes_on(
    local_stack: RunningStack, length: str, status: int, says: str
) -> None:
    with socket.create_connection(("127.0.0.1", local_stack.port), timeout=10) as sock:
        sock.sendall(f"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n".encode())
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith(f"HTTP/1.1 {status} ") and answer.endswith(f"\r\n\r\n{says}\n"), answer
    assert local_stack.simulator().call("+14155550100").start().dial is not None
    assert "Traceback" not in local_stack.output()


def test_the_aws_emulation_listens_on_loopback_whatever_host_says(tmp_path: Path) -> None:
    """--host 127.0.0.2: the webhook listens there, the emulation (no authentication) on 127.0.0.1 only. With
    no TWILIO_AUTH_TOKEN the banner shows the token it generated, in full."""
    port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_AUTH_TOKEN", "FAILOVER_DID_LOCAL")}
    log = tmp_path / "local.log"
    command = [CLI, "local", "--host", "127.0.0.2", "--port", str(port), "--aws-port", str(aws_port)]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(300):
            assert process.poll() is None, log.read_text()
            if "is running" in log.read_text():
                break
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        socket.create_connection(("127.0.0.1", aws_port), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", aws_port), timeout=5)
        banner = log.read_text()
        assert f"AWS emulation  http://127.0.0.1:{aws_port}" in banner and "warning" not in banner
        (token,) = re.findall(r"Auth token     ([0-9a-f]{32})   \(generated for this run", banner)
        assert token
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_calls_lists_a_voicemail_left_through_the_local_stack(local_stack: RunningStack) -> None:
    """The call log lives in the local stack's emulated DynamoDB; `calls` reads it from another process."""
    call = local_stack.simulator().call("+14155550100", from_="+14155550987")
    call.start()
    for _ in CASCADE:
        reply = call.dial_ended("busy")
    assert reply.records and reply.recording_callback
    assert call.leave_voicemail(21).status == 200
    assert call.hang_up(75).status == 200
    assert call.recording_stored(21).status == 200

    done = local_stack.cli("calls", "+14155550100", "--missed", "--json")
    assert done.returncode == 0, done.stderr
    [logged] = [c for c in json.loads(done.stdout) if c["call_sid"] == call.sid]
    assert (logged["caller"], logged["outcome"], logged["recording_seconds"]) == ("+14155550987", "voicemail", 21)
    assert [t["target"] for t in logged["tiers"]] == CASCADE
    assert logged["recording_url"].endswith("/Recordings/RE" + call.sid[2:])


def test_the_banner_names_the_right_port_in_its_restart_hint(local_stack: RunningStack) -> None:
    banner = local_stack.output()
    assert f".venv/bin/failover-did local --port {local_stack.port} --aws-port {local_stack.aws_port}" in banner
    assert "\n      failover-did" not in banner  # never a bare command: it is not on PATH after `make install`


def run_local(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_DID_LOCAL"}
    return subprocess.run([CLI, "local", *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("taken", ["--port", "--aws-port", "the next port"])
def test_a_taken_port_ends_the_stack_at_once_naming_it(taken: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        if taken == "--port":
            result, flag = run_local("--port", str(busy), "--aws-port", str(free_port())), "--port"
        elif taken == "--aws-port":
            result, flag = run_local("--port", str(free_port()), "--aws-port", str(busy)), "--aws-port"
        else:  # the emulation's default port is the webhook's + 1
            result, flag = run_local("--port", str(busy - 1)), "--aws-port"
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {busy} on 127.0.0.1" in result.stderr and f"Choose another with {flag} PORT" in result.stderr
    assert "Traceback" not in result.stderr and "is running" not in result.stdout


def test_port_0_picks_free_ports_for_both(tmp_path: Path) -> None:
    log = tmp_path / "local.log"
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_DID_LOCAL"}
    process = subprocess.Popen([CLI, "local", "--port", "0"], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(300):
            assert process.poll() is None, log.read_text()
            if "is running" in log.read_text():
                break
            time.sleep(0.2)
        banner = log.read_text()
        (port,) = re.findall(r"Voice URL      http://127\.0\.0\.1:(\d+)/voice", banner)
        (aws_port,) = re.findall(r"AWS emulation  http://127\.0\.0\.1:(\d+)", banner)
        assert port not in ("0", "3000") and aws_port not in ("0", port), banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        assert f"--port {port} --public-url" in banner  # the restart hint keeps the port the tunnel points at
    finally:
        process.terminate()
        process.wait(timeout=10)


THOUSAND = 1000


def thousand_numbers() -> str:
    lines = ["numbers:"]
    for i in range(THOUSAND):
        lines += [f'  "+1415555{i:04d}":', f'    primary: {{target: "+1628555{i:04d}"}}']
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(900)  # loading 1,000 rules into moto takes minutes on a loaded machine (not a timed assertion)
def test_with_1000_numbers_no_call_is_answered_before_the_rules_are_in(tmp_path: Path) -> None:
    """Calls to the last number, from the moment the stack starts: each is refused at the door (not yet
    listening) or dialed, never told "unknown number". The banner summarises the numbers."""
    port, aws_port = free_port(), free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(thousand_numbers())
    log = tmp_path / "local.log"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}
    env.pop("FAILOVER_DID_LOCAL", None)
    command = [CLI, "local", "--port", str(port), "--aws-port", str(aws_port), "--rules", str(rules)]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    last = f"+1415555{THOUSAND - 1:04d}"
    sim = RunningStack(process, port, aws_port, log).simulator()
    answered = refused = 0
    try:
        while answered < 5:
            assert process.poll() is None, log.read_text()
            try:
                reply = sim.call(last).start()
            except OSError:
                refused += 1
                time.sleep(0.05)
                continue
            answered += 1
            assert reply.dial is not None and reply.dial.targets == (f"+1628555{THOUSAND - 1:04d}",), reply.body
        while "fallbacks: " not in log.read_text():  # the banner, once the static fallbacks are published
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        banner = log.read_text()
        (rules_line,) = [line for line in banner.splitlines() if line.startswith("  Rules ")]
        assert f"{THOUSAND} numbers (+14155550000, +14155550001, +14155550002, ... and 997 more" in rules_line
        assert "`.venv/bin/failover-did rules list`" in rules_line and len(rules_line) < 250
        assert f"fallbacks: {THOUSAND} published" in banner and len(banner.splitlines()) < 40
        assert refused > 0  # the calls did start before the stack was ready
    finally:
        process.terminate()
        process.wait(timeout=10)


def webhook_containers(stack: RunningStack) -> list[int]:
    """The stack's webhook container processes (its children running the spawned handler)."""
    pid = stack.process.pid
    children = [
        int(child)
        for task in os.listdir(f"/proc/{pid}/task")
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
    ]
    return [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]


def test_a_killed_webhook_container_costs_one_request_and_is_replaced(tmp_path: Path) -> None:
    """A container that dies (killed, as an out-of-memory killer would) costs at most the request it was
    given (a 500, as API Gateway answers for a crashed function); a fresh container takes its place and
    the calls after it are answered."""
    stack = start_local(tmp_path, "--containers", "1")
    try:
        sim = stack.simulator()
        sim.timeout = 60  # the replacement's cold start, on a busy machine
        assert sim.call("+14155550200").start().dial is not None
        (container,) = webhook_containers(stack)
        os.kill(container, 9)
        first = sim.call("+14155550200").start()
        assert first.status in (200, 500)
        for _ in range(3):
            assert sim.call("+14155550200").start().dial is not None
        assert webhook_containers(stack) not in ([], [container])
    finally:
        stop_local(stack)
