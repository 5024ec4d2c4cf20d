"""The local stack's notices: `rules apply` subscribes a number's notify recipients on the emulated
NotifyTopic, and a missed-call notice published by the service's own code (the one the webhook calls)
is printed by `failover-did local` as one `notice:` line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import start_local, stop_local

RULES = """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
    final: {voicemail: true}
    notify: {email: [frontdesk@example.com], sms: ["+14155550123"]}
"""
MISSED = """
from datetime import UTC, datetime
from failover_did_cli.env import use_local_stack_if_set
use_local_stack_if_set()
from failover_did.call_record import CallOutcome, CallRecord, TierAttempt
from failover_did.notices import missed_call
now = datetime.now(UTC)
missed_call(
    CallRecord(
        call_sid="CA0001", number="+14155550100", caller="+14155550199", started=now, ended=now,
        outcome=CallOutcome.VOICEMAIL, tiers=(TierAttempt(1, 0, "sip:frontdesk@pbx.example.com", "busy", 486),),
        recording_url="https://api.twilio.com/rec/RE1", recording_seconds=42,
    ),
    now,
)
"""


def test_rules_apply_subscribes_recipients_and_the_stack_prints_each_notice(tmp_path: Path) -> None:
    stack = start_local(tmp_path, rules=None)
    try:
        rules = tmp_path / "notify.yaml"
        rules.write_text(RULES)
        applied = stack.cli("rules", "apply", str(rules))
        assert applied.returncode == 0, applied.stderr
        assert "notify: email frontdesk@example.com subscribed for +14155550100" in applied.stdout
        assert "notify: sms +14155550123 subscribed for +14155550100" in applied.stdout
        again = stack.cli("rules", "apply", str(rules))
        assert "notify: email frontdesk@example.com receives +14155550100" in again.stdout  # idempotent

        subprocess.run([sys.executable, "-c", MISSED], env=stack.env, check=True, timeout=60)
        expected = (
            "notice: missed call from +1 415-555-0199 to +1 415-555-0100: no tier took it; the caller left a "
            "voicemail (0:42) https://api.twilio.com/rec/RE1"
        )
        deadline = time.monotonic() + 30
        while expected not in stack.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert expected in stack.output()
        assert stack.output().count("notice: ") == 1
    finally:
        stop_local(stack)
