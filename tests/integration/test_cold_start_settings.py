"""A function's container reads and checks its settings at cold start: a bad one stops it there, naming the
variable, instead of failing each call later (a retention that cannot be read once left every call unlogged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cold_start(module: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **environment}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "functions"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("module", ["failover_did.webhook.app", "failover_did.health.checker"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EVENT_RETENTION_DAYS", "ninety"),
        ("HEALTH_DOWN_AFTER", "0"),
        ("PROBE_TIMEOUT_SECONDS", "30"),
        ("DYNAMODB_TIMEOUT_SECONDS", "half"),
    ],
)
def test_a_bad_setting_stops_the_cold_start_naming_it(module: str, name: str, value: str) -> None:
    started = cold_start(module, **{name: value})
    assert started.returncode != 0
    assert f"SettingError: {name}={value!r}" in started.stderr


def test_good_settings_start() -> None:
    started = cold_start("failover_did.webhook.app", EVENT_RETENTION_DAYS="30", HEALTH_DOWN_AFTER="3")
    assert started.returncode == 0, started.stderr
