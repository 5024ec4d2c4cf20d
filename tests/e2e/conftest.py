"""End-to-end fixtures: `failover-did local` started as a user starts it, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from failover_did_cli.callsim import TwilioSimulator
from failover_did_cli.local_stack import free_port

CLI = str(Path(sys.executable).with_name("failover-did"))
TOKEN = "e2e-token-0123456789"

E2E_RULES = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
    failover:
      - {target: "+14155550111", timeout: 20}
      - {target: "sip:oncall@dr.example.net", timeout: 30}
    triggers: [timeout, busy, failed, "503"]
    final: {say: "Sorry, nobody can take your call.", voicemail: true}
  "+14155550200":
    primary: {target: "sip:sales@pbx.example.com", timeout: 25}
    failover:
      - {target: "+14155550222"}
      - {target: "+14155550223"}
    triggers: [busy, failed, "5xx"]
  "+14155550300":
    primary: {target: "sip:desk@pbx.example.com"}
    failover:
      - {target: "+14155550333"}
      - {target: "+14155550334"}
    triggers: ["503"]
"""


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    port: int
    aws_port: int
    log: Path

    @property
    def voice_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/voice"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "FAILOVER_DID_LOCAL": f"http://127.0.0.1:{self.aws_port}"}

    def simulator(self) -> TwilioSimulator:
        return TwilioSimulator(self.voice_url, TOKEN)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True, timeout=60)

    def output(self) -> str:
        return self.log.read_text()


STARTED = ("  fallbacks: ", "  no fallback published: ")


def start_local(
    tmp: Path, *args: str, rules: str | None = E2E_RULES, extra_env: dict[str, str] | None = None
) -> RunningStack:
    port, aws_port = free_port(), free_port()
    command = [CLI, "local", "--port", str(port), "--aws-port", str(aws_port), *args]
    if rules is not None:
        rules_file = tmp / "rules.yaml"
        rules_file.write_text(rules)
        command += ["--rules", str(rules_file)]
    log = tmp / "local.log"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    env.pop("FAILOVER_DID_LOCAL", None)
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, text=True)
    stack = RunningStack(process, port, aws_port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"failover-did local exited {process.returncode}:\n{stack.output()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                # the banner, then the static fallbacks' outcome (published while the stack already answers)
                if response.status == 200 and any(end in stack.output() for end in STARTED):
                    return stack
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"failover-did local did not start:\n{stack.output()}")


def stop_local(stack: RunningStack) -> None:
    stack.process.terminate()
    try:
        stack.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        stack.process.kill()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # These tests walk cascades through fictional destinations: with the default thresholds the
    # passive checks would (rightly) mark those down and later calls would skip them.
    stack = start_local(tmp_path_factory.mktemp("local"), extra_env={"HEALTH_DOWN_AFTER": "1000"})
    yield stack
    stop_local(stack)


# --------------------------------------------------------------------------------------------------
# A real browser: Debian's chromium and chromium-driver, headless
# --------------------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def require_browser() -> None:
    """Skip when this machine has no Chromium, except under CI (`.ci/run` installs it): there it must run."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed (Debian packages chromium and chromium-driver)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests must run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def open_browser(tmp_path: Path) -> Iterator[Any]:
    """Opens a fresh headless Chromium (its own profile: no cookies) each call; all quit after the test."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def open_one() -> Any:
        options = Options()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'chromium-profile-{len(drivers)}'}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(60)
        drivers.append(driver)
        return driver

    yield open_one
    for driver in drivers:
        driver.quit()
