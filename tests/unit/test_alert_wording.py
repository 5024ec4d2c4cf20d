"""The alert formatter's words, pure: recorded CloudWatch notifications plus a Situation (what DynamoDB would
have said) in, the SMS, subject and email out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover_did.alerts.alarm import Alarm, Kind, of_record, wants_notice
from failover_did.alerts.alarm_notice import compose
from failover_did.alerts.dedupe import AlertRecord, should_publish
from failover_did.alerts.gsm import SMS_LIMIT, SUBJECT_LIMIT, fit, septets
from failover_did.alerts.situation import Budget, Situation
from failover_did.alerts.wording import human_number, short_target
from failover_did.health.hysteresis import TargetHealth
from failover_did.rules.model import Rule, Tier
from failover_did.rules.validate import parse_rules_yaml
from failover_did.store.events import Event
from tests.support import RULES_YAML

ALARMS = Path(__file__).resolve().parents[1] / "data" / "alarms"
RULES = tuple(parse_rules_yaml(RULES_YAML).values())
PBX = "sip:frontdesk@pbx.example.com"
SALES = "sip:sales@pbx.example.com"
DR = "sip:oncall@dr.example.net"


def alarm(name: str) -> Alarm:
    envelope: dict[str, Any] = json.loads((ALARMS / f"{name}.json").read_text())
    parsed = of_record(envelope["Records"][0])
    assert isinstance(parsed, Alarm)
    return parsed


def down(target: str, reason: str = "503", since: str = "2026-11-28T10:02:00Z", failures: int = 3) -> TargetHealth:
    return TargetHealth(target, "down", failures, 0, reason, "2026-11-28T10:04:00Z", since)


def failover(number: str, at: str, sid: str, to_tier: int, to: str, reason: str) -> Event:
    detail = {"call_sid": sid, "from_tier": to_tier - 1, "to_tier": to_tier, "to_target": to, "reason": reason}
    return Event(number, at, "failover", detail)


def unreachable(number: str, at: str, target: str, tier: int, reason: str = "503") -> Event:
    detail = {"target": target, "tier": tier, "tier_name": "primary", "state": "down", "reason": reason}
    return Event(number, at, "unreachable", detail)


def recovered(number: str, at: str, target: str, tier: int) -> Event:
    return Event(number, at, "recovered", {"target": target, "tier": tier, "state": "up", "reason": "200"})


THREE_FAILOVERS = (
    failover("+14155550100", "2026-11-28T10:07:40.120Z", "CA3", 1, "+14155550111", "busy"),
    failover("+14155550100", "2026-11-28T10:05:02.500Z", "CA2", 1, "+14155550111", "busy"),
    failover("+14155550100", "2026-11-28T10:02:11.004Z", "CA1", 1, "+14155550111", "timeout"),
)


# --- which alarm it is ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("failover_alarm", Kind.FAILOVER),
        ("destination_unreachable_alarm", Kind.UNREACHABLE),
        ("destination_unverified_alarm", Kind.UNVERIFIED),
        ("webhook_errors_alarm", Kind.WEBHOOK_ERRORS),
        ("api_5xx_alarm", Kind.API_5XX),
        ("signatures_alarm", Kind.SIGNATURES),
        ("budget_alarm", Kind.BUDGET),
        ("health_checker_alarm", Kind.HEALTH_CHECKER),
        ("unknown_alarm", Kind.UNKNOWN),
    ],
)
def test_each_recorded_alarm_is_recognised_by_its_metric(fixture: str, kind: Kind) -> None:
    assert alarm(fixture).kind is kind


def test_the_notification_is_read_in_full() -> None:
    a = alarm("destination_unreachable_alarm")
    assert a.name == "failover-did-DestinationUnreachableAlarm-1Q2W3E4R5T6Y"
    assert (a.state, a.old_state) == ("ALARM", "OK")
    assert a.changed_at == datetime(2026, 11, 28, 10, 3, 12, 345000, tzinfo=UTC)
    assert (a.namespace, a.metric, a.period, a.threshold, a.value) == ("FailoverDid", "DestinationsDown", 60, 1.0, 1.0)
    assert a.region == "US East (N. Virginia)"
    assert a.console_url == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/failover-did-DestinationUnreachableAlarm-1Q2W3E4R5T6Y"
    )


def test_insufficient_data_is_ignored_except_for_the_health_checker() -> None:
    assert not wants_notice(alarm("destination_unreachable_insufficient"))
    assert wants_notice(alarm("health_checker_insufficient"))
    assert all(wants_notice(alarm(n)) for n in ("failover_alarm", "failover_ok", "unknown_alarm"))


# --- destination unverified (the prober cannot reach it) ------------------------------------------


def unverified(target: str, reason: str = "timeout", since: str = "2026-11-28T10:00:00Z") -> TargetHealth:
    return TargetHealth(target, "unverified", 0, 0, reason, "2026-11-28T10:00:00Z", since, told_unverified=True)


def test_unverified_says_the_prober_cannot_reach_it_that_calls_still_go_there_and_what_to_do() -> None:
    notice = compose(alarm("destination_unverified_alarm"), Situation(unverified=(unverified(PBX),), rules=RULES))
    assert notice.sms == (
        "failover-did: the prober cannot reach sip:frontdesk@pbx (+1 415-555-0100 primary); calls still go there. "
        "Allow the probe's source or set health:/probe: false"
    )
    assert septets(notice.sms) <= SMS_LIMIT
    assert notice.subject == "failover-did ALARM: destination unverified on +1 415-555-0100"
    assert notice.condition == PBX
    body = notice.email
    assert body.startswith(
        "failover-did: the prober cannot reach sip:frontdesk@pbx.example.com (+1 415-555-0100 primary); "
        "calls still go there. Allow the probe's source or set health:/probe: false\n\n"
    )
    assert (
        "Destinations the prober cannot reach (1); calls still go to each of them:\n"
        "  sip:frontdesk@pbx.example.com: never reached since 2026-11-28 10:00Z; last probe: timeout at 10:00Z\n"
        "    primary of +1 415-555-0100\n"
    ) in body
    advice = body.split("What to check:\n", 1)[1]
    assert "allow the probe's source address" in advice
    assert "`health:` URL" in advice and "`probe: false`" in advice
    assert "Down destinations: none." in body


def test_unverified_names_every_number_and_tier_it_serves_and_the_tier_behind_a_health_url() -> None:
    rules = parse_rules_yaml(
        """
numbers:
  "+14155550100":
    primary: {target: "sip:frontdesk@pbx.example.com"}
    failover: [{target: "+14155550111", health: "https://pbx.example.com/health"}]
  "+14155550200":
    primary: {target: "sip:frontdesk@pbx.example.com"}
"""
    )
    health = (unverified(PBX), unverified("https://pbx.example.com/health", "refused"))
    notice = compose(alarm("destination_unverified_alarm"), Situation(unverified=health, rules=tuple(rules.values())))
    assert notice.sms.endswith("; +2 more")  # three (number, tier) uses of two targets
    assert septets(notice.sms) <= SMS_LIMIT
    assert notice.condition == "https://pbx.example.com/health|" + PBX
    body = notice.email
    assert "Destinations the prober cannot reach (2)" in body
    assert "    primary of +1 415-555-0100\n    primary of +1 415-555-0200\n" in body
    assert "  https://pbx.example.com/health: never reached since 2026-11-28 10:00Z; last probe: refused" in body
    assert "    tier 1 +1 415-555-0111 of +1 415-555-0100\n" in body


def test_unverified_with_nothing_read_still_pages_in_one_segment() -> None:
    notice = compose(alarm("destination_unverified_alarm"), Situation(unread=("health", "rules")))
    assert notice.sms == (
        "failover-did: the prober cannot reach a destination; calls still go there. "
        "Allow the probe's source or set health:/probe: false"
    )
    assert notice.condition is None  # the facts are unknown: never taken for a repeat
    assert "Destinations the prober cannot reach: unknown (the health table could not be read)." in notice.email


def test_unverified_ok_says_the_prober_now_reaches_it_or_that_some_are_still_unreached() -> None:
    ok = alarm("destination_unverified_ok")
    detail = {"target": PBX, "tier": 0, "tier_name": "primary", "state": "up", "reason": "200"}
    reached = Situation(rules=RULES, events=(Event("+14155550100", "2026-11-28T10:15:00Z", "verified", detail),))
    notice = compose(ok, reached)
    assert notice.sms == "failover-did: the prober now reaches sip:frontdesk@pbx (+1 415-555-0100 primary)"
    assert notice.subject == "failover-did resolved: destination unverified"
    still = compose(ok, Situation(unverified=(unverified(SALES),), rules=RULES))
    assert (
        still.sms
        == "failover-did: resolved - no new unverified destination; 1 destination still not reached by the prober"
    )
    assert "What to check:" not in still.email
    assert compose(ok, Situation()).sms == "failover-did: resolved - the destination unverified alarm has cleared"


# --- destination unreachable ----------------------------------------------------------------------


def test_unreachable_names_number_tier_target_reason_time_and_where_calls_go() -> None:
    situation = Situation(
        down=(down(PBX),),
        rules=RULES,
        events=(
            failover("+14155550100", "2026-11-28T10:02:31.000Z", "CA1", 1, "+14155550111", "down"),
            unreachable("+14155550100", "2026-11-28T10:02:00.000Z", PBX, 0),
        ),
    )
    notice = compose(alarm("destination_unreachable_alarm"), situation)
    assert notice.sms == (
        "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx unreachable (503) since 10:02Z; "
        "calls go to +1 415-555-0111"
    )
    assert notice.subject == "failover-did ALARM: destination unreachable on +1 415-555-0100"
    assert notice.condition == PBX
    body = notice.email
    assert body.startswith(
        "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx.example.com unreachable (503) since 10:02Z; "
        "calls go to +1 415-555-0111\n\n"
    )
    assert "Alarm 'destination unreachable' is ALARM (was OK) since 2026-11-28 10:03Z in US East (N. Virginia)." in body
    assert "A destination named in the rules is down (health checks or live calls)." in body
    assert "CloudWatch says: Threshold Crossed: 1 out of the last 1 datapoints [1.0 (28/11/26 10:02:00)]" in body
    assert (
        "Down destinations now (1):\n"
        "  sip:frontdesk@pbx.example.com: down since 2026-11-28 10:02Z (503; 3 failed checks in a row, "
        "last check 10:04Z)\n"
        "    primary of +1 415-555-0100 - calls go to +1 415-555-0111 (tier 1)\n"
    ) in body
    assert (
        "Recent events (last 60 min, newest first):\n"
        "  time    number           kind         details\n"
        "  10:02Z  +1 415-555-0100  failover     primary -> tier 1 +1 415-555-0111 (down), call CA1\n"
        "  10:02Z  +1 415-555-0100  unreachable  primary sip:frontdesk@pbx.example.com: 503\n"
    ) in body
    assert "What to check:" in body and "Is the PBX" in body and "failover-did probe <target>" in body
    assert "SIP port" in body
    assert "Could not read" not in body


def test_unreachable_with_several_destinations_mentions_the_first_and_how_many_more() -> None:
    situation = Situation(down=(down(SALES, "timeout"), down(PBX), down(DR, "refused")), rules=RULES)
    notice = compose(alarm("destination_unreachable_alarm"), situation)
    assert notice.sms == (
        "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx unreachable (503) since 10:02Z; "
        "calls go to +1 415-555-0111; +2 more"
    )
    assert notice.subject == "failover-did ALARM: destination unreachable on +1 415-555-0100 +2 more"
    assert notice.condition == "|".join(sorted([PBX, SALES, DR]))
    assert "Down destinations now (3):" in notice.email
    assert "    tier 2 of +1 415-555-0100 - calls go to +1 415-555-0111 (tier 1)" in notice.email
    assert "    primary of +1 415-555-0200 - calls go to +1 415-555-0222 (tier 1)" in notice.email


def test_unreachable_when_every_tier_of_the_rule_is_down() -> None:
    rule = Rule("+442071838750", (Tier("sip:reception@pbx.example.co.uk:5061;transport=tls"), Tier("sips:dr@10.0.0.7")))
    situation = Situation(
        down=(down(rule.tiers[0].target, "timeout"), down(rule.tiers[1].target, "refused")), rules=(rule,)
    )
    notice = compose(alarm("destination_unreachable_alarm"), situation)
    assert notice.sms == (
        "failover-did: +44 20 7183 8750 primary sip:reception@pbx unreachable (timeout) since 10:02Z; "
        "every tier is down; +1 more"
    )
    assert "every tier of it is down; calls ring them all in order" in notice.email


def test_a_destination_down_since_an_earlier_day_says_the_day() -> None:
    situation = Situation(down=(down(PBX, since="2026-11-27T23:58:00Z"),), rules=RULES)
    assert compose(alarm("destination_unreachable_alarm"), situation).sms == (
        "failover-did: +1 415-555-0100 primary sip:frontdesk@pbx unreachable (503) since 27 Nov 23:58Z; "
        "calls go to +1 415-555-0111"
    )


def test_a_probe_target_other_than_the_dialed_one_is_shown_beside_it() -> None:
    rule = Rule("+14155550300", (Tier("+14155550333", health="https://status.example.com/pbx"), Tier("+14155550344")))
    notice = compose(
        alarm("destination_unreachable_alarm"), Situation(down=(down(rule.tiers[0].health or ""),), rules=(rule,))
    )
    assert notice.sms == (
        "failover-did: +1 415-555-0300 primary +1 415-555-0333 unreachable (503) since 10:02Z; "
        "calls go to +1 415-555-0344"
    )
    assert "    primary +1 415-555-0333 of +1 415-555-0300 - calls go to +1 415-555-0344 (tier 1)" in notice.email


def test_unreachable_when_dynamodb_could_not_be_read_still_says_something_useful() -> None:
    notice = compose(alarm("destination_unreachable_alarm"), Situation(unread=("health", "rules", "events")))
    assert notice.sms == "failover-did: 1 destination unreachable since 10:03Z"
    assert notice.condition is None  # never taken for a repeat
    assert "Down destinations: unknown (the health table could not be read)." in notice.email
    assert "Recent events: unknown (the events table could not be read)." in notice.email
    assert "Could not read health, rules, events from DynamoDB; this message may leave out details." in notice.email
    assert "What to check:" in notice.email


def test_a_down_destination_without_a_known_rule_is_still_named() -> None:
    notice = compose(alarm("destination_unreachable_alarm"), Situation(down=(down(PBX),), unread=("rules",)))
    assert notice.sms == "failover-did: sip:frontdesk@pbx unreachable (503) since 10:02Z"


def test_unreachable_resolved_names_what_came_back() -> None:
    situation = Situation(
        rules=RULES,
        events=(
            recovered("+14155550100", "2026-11-28T10:20:03.000Z", PBX, 0),
            unreachable("+14155550100", "2026-11-28T10:02:00.000Z", PBX, 0),
        ),
    )
    notice = compose(alarm("destination_unreachable_ok"), situation)
    assert (
        notice.sms == "failover-did: recovered - +1 415-555-0100 primary sip:frontdesk@pbx reachable again since 10:20Z"
    )
    assert notice.subject == "failover-did resolved: destination unreachable"
    assert "Down destinations: none." in notice.email
    assert "  10:20Z  +1 415-555-0100  recovered    primary sip:frontdesk@pbx.example.com up: 200" in notice.email
    assert "What to check" not in notice.email
    assert compose(alarm("destination_unreachable_ok"), Situation(rules=RULES)).sms == (
        "failover-did: recovered - every destination is reachable again"
    )


# --- failover active -----------------------------------------------------------------------------------


def test_failover_active_counts_the_calls_and_says_where_they_went() -> None:
    notice = compose(alarm("failover_alarm"), Situation(rules=RULES, events=THREE_FAILOVERS))
    assert notice.sms == (
        "failover-did: failover active on +1 415-555-0100 - 3 calls since 10:02Z went to +1 415-555-0111 (busy)"
    )
    assert notice.subject == "failover-did ALARM: failover active on +1 415-555-0100"
    assert notice.condition == "+14155550100"
    assert "  10:07Z  +1 415-555-0100  failover  primary -> tier 1 +1 415-555-0111 (busy), call CA3" in notice.email
    assert "dual-billing fee" in notice.email


def test_failover_active_on_several_numbers_picks_the_busiest_and_counts_calls_not_hops() -> None:
    events = (
        failover("+14155550200", "2026-11-28T10:08:00.000Z", "CA9", 1, "+14155550222", "5xx"),
        failover("+14155550100", "2026-11-28T10:07:50.000Z", "CA3", 2, DR, "timeout"),  # CA3 cascaded on
        *THREE_FAILOVERS,
    )
    notice = compose(alarm("failover_alarm"), Situation(rules=RULES, events=events))
    assert notice.sms == (
        "failover-did: failover active on +1 415-555-0100 - 3 calls since 10:02Z went to "
        "sip:oncall@dr (timeout); +1 more"
    )
    assert notice.condition == "+14155550100|+14155550200"


def test_failover_active_without_events_falls_back_on_the_metric() -> None:
    notice = compose(alarm("failover_alarm"), Situation(unread=("events",)))
    assert notice.sms == "failover-did: failover active - 3 failovers in 5 min"
    assert notice.condition is None


def test_failover_resolved() -> None:
    notice = compose(alarm("failover_ok"), Situation(rules=RULES))
    assert notice.sms == "failover-did: resolved - no more failovers in the last 5 min"
    assert notice.subject == "failover-did resolved: failover active"


# --- the other alarms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "sms", "subject", "advice"),
    [
        (
            "webhook_errors_alarm",
            "failover-did: webhook errors - the voice function failed 4 times in 5 min; "
            "callers may get Twilio's fallback or an error",
            "failover-did ALARM: webhook errors",
            "VoiceFunction's logs",
        ),
        (
            "api_5xx_alarm",
            "failover-did: API 5xx - the voice API answered 6 requests with 5xx in 5 min; "
            "Twilio falls back for those calls",
            "failover-did ALARM: API 5xx",
            "throttled at 100 requests/s",
        ),
        (
            "signatures_alarm",
            "failover-did: signatures refused (someone is probing the endpoint) - 37 webhooks refused in 5 min; "
            "nothing was dialed for them",
            "failover-did ALARM: signatures refused",
            "Is the auth token in SSM",
        ),
        (
            "health_checker_alarm",
            "failover-did: health checker not running - last run 09:58Z; down destinations are not skipped",
            "failover-did ALARM: health checker not running",
            "HealthCheckFunction's logs",
        ),
        (
            "health_checker_insufficient",
            "failover-did: health checker not running - last run 09:58Z; down destinations are not skipped",
            "failover-did no data: health checker not running",
            "HealthCheckFunction's logs",
        ),
        (
            "unknown_alarm",
            "failover-did: failover-did-RulesTableThrottles is in ALARM - "
            "Reads of the rules table are being throttled.",
            "failover-did ALARM: failover-did-RulesTableThrottles",
            "CloudWatch console",
        ),
    ],
)
def test_alarm_texts(fixture: str, sms: str, subject: str, advice: str) -> None:
    situation = Situation(rules=RULES, events=THREE_FAILOVERS, last_check="2026-11-28T09:58:00Z")
    notice = compose(alarm(fixture), situation)
    assert notice.sms == sms
    assert notice.subject == subject
    assert notice.email.startswith(sms + "\n\n")
    assert "What to check:" in notice.email and advice in notice.email
    assert "  10:07Z  +1 415-555-0100  failover  primary -> tier 1 +1 415-555-0111 (busy), call CA3" in notice.email


@pytest.mark.parametrize(
    ("fixture", "sms"),
    [
        ("webhook_errors_ok", "failover-did: resolved - the voice function has stopped failing"),
        ("api_5xx_ok", "failover-did: resolved - the voice API answers without 5xx again"),
        ("signatures_ok", "failover-did: resolved - refused signatures are back to normal"),
        ("health_checker_ok", "failover-did: recovered - the health checker is running again (last run 10:29Z)"),
    ],
)
def test_resolved_texts(fixture: str, sms: str) -> None:
    notice = compose(alarm(fixture), Situation(rules=RULES, last_check="2026-11-28T10:29:00Z"))
    assert notice.sms == sms
    assert notice.subject.startswith("failover-did resolved: ")
    assert "What to check" not in notice.email


def test_unknown_alarm_without_description_uses_the_metric_from_the_reason() -> None:
    a = replace(alarm("unknown_alarm"), description="")
    assert compose(a, Situation()).sms == (
        "failover-did: failover-did-RulesTableThrottles is in ALARM - ReadThrottleEvents was 12 in 1 min (threshold 1)"
    )
    bare = replace(a, reason="Alarm went off for a reason nobody parsed", metric="")
    assert compose(bare, Situation()).sms == (
        "failover-did: failover-did-RulesTableThrottles is in ALARM - Alarm went off for a reason nobody parsed"
    )
    ok = replace(a, state="OK", old_state="ALARM")
    assert compose(ok, Situation()).sms == "failover-did: resolved - failover-did-RulesTableThrottles is OK again"


def test_budget_exceeded_names_the_number_its_count_and_the_fee() -> None:
    budgets = (
        Budget("+14155550200", 30, 5, "2026-11-20T08:00:00.000Z"),  # crossed earlier this month
        Budget("+14155550100", 12, 10, "2026-11-28T10:07:40.120Z"),  # crossed now: what the alarm is about
    )
    situation = Situation(rules=RULES, events=THREE_FAILOVERS, budgets=budgets)
    notice = compose(alarm("budget_alarm"), situation)
    assert notice.sms == (
        "failover-did: failover budget exceeded on +1 415-555-0100 - 12 failovers this month (budget 10); "
        "carriers may charge a dual-billing fee; +1 more"
    )
    assert notice.subject == "failover-did ALARM: failover budget exceeded on +1 415-555-0100 +1 more"
    assert notice.condition == "2026-11:+14155550100|+14155550200"
    assert "dual-billing fee when failover triggers more than N times a month" in notice.email
    assert "monthly_failover_budget" in notice.email


def test_budget_exceeded_without_counts_points_at_recent_failovers() -> None:
    notice = compose(alarm("budget_alarm"), Situation(rules=RULES, events=THREE_FAILOVERS))
    assert notice.sms == (
        "failover-did: failover budget exceeded (recent failovers on +1 415-555-0100); "
        "carriers may charge a dual-billing fee"
    )
    assert compose(alarm("budget_alarm"), Situation(rules=RULES)).sms == (
        "failover-did: failover budget exceeded on a number; carriers may charge a dual-billing fee"
    )


# --- the email's events table ----------------------------------------------------------------------------


def test_the_email_shows_at_most_ten_events_newest_first() -> None:
    many = tuple(
        failover("+14155550100", f"2026-11-28T10:{59 - i:02d}:00.000Z", f"CA{i}", 1, "+14155550111", "busy")
        for i in range(14)
    )
    body = compose(alarm("failover_alarm"), Situation(rules=RULES, events=many)).email
    assert "Recent events (last 60 min, newest first, 10 of 14):" in body
    assert "  10:59Z  +1 415-555-0100  failover  primary -> tier 1 +1 415-555-0111 (busy), call CA0" in body
    assert "call CA9\n" in body and "call CA10" not in body
    other = Event("+14155550100", "2026-11-28T10:00:00.000Z", "rule-changed", {"version": 3, "by": "ops"})
    assert (
        "  10:00Z  +1 415-555-0100  rule-changed  by=ops, version=3"
        in compose(alarm("failover_alarm"), Situation(events=(other,))).email
    )


# --- people's formats and the 160 characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "short"),
    [
        ("sip:frontdesk@pbx.example.com", "sip:frontdesk@pbx"),
        ("sips:reception@pbx.example.co.uk:5061;transport=tls", "sips:reception@pbx"),
        ("sip:pbx.example.com", "sip:pbx"),
        ("sip:100@192.0.2.10:5080", "sip:100@192.0.2.10"),
        ("sip:100@[2001:db8::1]:5060", "sip:100@[2001:db8::1]"),
        ("https://status.example.com/pbx", "status"),
        ("+14155550111", "+1 415-555-0111"),
        ("+442071838750", "+44 20 7183 8750"),
    ],
)
def test_short_targets(target: str, short: str) -> None:
    assert short_target(target) == short


def test_numbers_are_formatted_for_people_and_anything_else_is_left_alone() -> None:
    assert human_number("+14155550100") == "+1 415-555-0100"
    assert human_number("anonymous") == "anonymous"
    assert human_number("+1") == "+1"


def test_fit_cuts_at_a_word_keeps_the_tail_and_stays_in_gsm_7() -> None:
    text = "word " * 50
    cut = fit(text, 40, "; +3 more")
    assert cut == "word word word word word...; +3 more"
    assert fit("caf\u00e9 \u2013 \u201cquoted\u201d \u2026 \u4e2d", 160) == 'cafe - "quoted" ... ?'
    assert septets(fit("[" * 200, 160)) <= 160


def test_should_publish_pages_a_condition_once_while_it_lasts() -> None:
    problem = alarm("destination_unreachable_alarm")
    ok = alarm("destination_unreachable_ok")
    said = AlertRecord("ALARM", PBX)
    assert should_publish(problem, PBX, None)
    assert not should_publish(problem, PBX, said)
    assert should_publish(problem, SALES, said)  # a different condition is news
    assert should_publish(problem, PBX, AlertRecord("OK", ""))  # resolved since
    assert should_publish(problem, None, said)  # facts unknown: never taken for a repeat
    assert should_publish(problem, PBX, None, known=False)  # the record could not be read
    assert should_publish(ok, "", said)
    assert not should_publish(ok, "", AlertRecord("OK", ""))  # a repeated resolution
    assert should_publish(ok, "", None)  # CloudWatch says it left ALARM
    assert not should_publish(replace(ok, old_state="INSUFFICIENT_DATA"), "", None)  # a new alarm's first OK
    assert should_publish(ok, "", None, known=False)
    checker = alarm("health_checker_insufficient")
    assert not should_publish(alarm("health_checker_alarm"), "", AlertRecord("INSUFFICIENT_DATA", ""))
    assert should_publish(alarm("health_checker_ok"), "", AlertRecord("INSUFFICIENT_DATA", ""))
    assert should_publish(checker, "", None)


_ALL_FIXTURES = sorted(p.stem for p in ALARMS.glob("*.json"))
_host = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40).map(lambda s: s.strip("-") or "h")
_user = st.text("abcdefghijklmnopqrstuvwxyz0123456789._+", min_size=1, max_size=60)
_sip = st.builds(
    lambda scheme, user, labels, port: f"{scheme}:{user}@{'.'.join(labels)}{port}",
    st.sampled_from(["sip", "sips"]),
    _user,
    st.lists(_host, min_size=1, max_size=6),
    st.sampled_from(["", ":5060", ":5061;transport=tls", ";transport=tcp"]),
)
_number = st.integers(200, 999).map(lambda n: f"+1415555{n:04d}")
_target = st.one_of(_sip, _number)


@st.composite
def situations(draw: st.DrawFn) -> Situation:
    rules = []
    for number in draw(st.lists(_number, min_size=1, max_size=12, unique=True)):
        tiers = tuple(Tier(t) for t in draw(st.lists(_target, min_size=1, max_size=6)))
        rules.append(Rule(number, tiers))
    targets = [t.target for r in rules for t in r.tiers]
    reasons = st.text(min_size=0, max_size=80)
    down_targets = draw(st.lists(st.sampled_from(targets), max_size=len(targets), unique=True))
    down_states = tuple(down(t, draw(reasons)) for t in down_targets)
    evs = []
    for i in range(draw(st.integers(0, 30))):
        rule = draw(st.sampled_from(rules))
        detail = {"call_sid": f"CA{i}", "to_tier": 1, "to_target": draw(_target), "reason": draw(reasons)}
        evs.append(
            Event(
                rule.number,
                f"2026-11-28T10:{59 - i:02d}:00.000Z",
                draw(st.sampled_from(["failover", "recovered"])),
                detail,
            )
        )
    budgets = tuple(Budget(r.number, 10**9, 1) for r in rules[: draw(st.integers(0, 3))])
    return Situation(down=down_states, rules=tuple(rules), events=tuple(evs), budgets=budgets, last_check=None)


@settings(max_examples=150, deadline=None)
@given(situations(), st.sampled_from(_ALL_FIXTURES), st.text(max_size=300))
def test_an_sms_is_always_one_segment_and_a_subject_fits_sns(situation: Situation, fixture: str, name: str) -> None:
    a = alarm(fixture)
    for candidate in (a, replace(a, name=name or "x"), replace(a, description="", reason=name)):
        notice = compose(candidate, situation)
        assert len(notice.sms) <= SMS_LIMIT and septets(notice.sms) <= SMS_LIMIT
        assert notice.sms.isascii() and notice.sms.isprintable()
        assert notice.sms.startswith("failover-did: ")
        assert len(notice.subject) <= SUBJECT_LIMIT and notice.subject.isascii() and notice.subject.isprintable()
        assert notice.email.startswith("failover-did: ")


def test_the_email_lists_at_most_fifty_down_destinations() -> None:
    many = tuple(down(f"sip:pbx{i:02d}@pbx.example.com") for i in range(60))
    body = compose(alarm("destination_unreachable_alarm"), Situation(down=many)).email
    assert "Down destinations now (60):" in body
    assert body.count("(no rule uses it any more)") == 50
    assert "  ... and 10 more (`failover-did status` lists them all)" in body
