"""The one place a rules file is judged: every problem is collected and named, or the rules come back.

The format (see `model` for the types):

    numbers:
      "+14155550100":
        primary: {target: "sip:frontdesk@pbx.example.com", timeout: 15}
        failover:
          - {target: "+14155550111", timeout: 20}
          - {target: "sip:oncall@dr.example.net", screen: true}
        triggers: [timeout, busy, failed, "503"]
        final: {say: "Sorry, nobody can take your call.", voicemail: true, transcribe: true}
        notify: {email: [ops@example.com], sms: ["+14155550123"]}
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

import yaml

from failover_did.rules.loading import LoadError, load_yaml
from failover_did.rules.model import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIGGERS,
    MAX_FAILOVER_TIERS,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    STATUS_TRIGGERS,
    Final,
    Rule,
    Tier,
)
from failover_did.rules.recipients import judge_notify
from failover_did.rules.targets import TargetError, normalize_target
from failover_did.rules.text import kind as _kind
from failover_did.rules.text import show as _show
from failover_did.rules.text import text_problem
from failover_did.rules.urls import address_problem, health_url_problem, probed_host
from failover_did.rules.warnings import RING_MAX_SECONDS, ring_seconds, ring_text, same_route_warnings
from failover_did.sipuri import SipUriError, parse_sip_uri

__all__ = ["RulesError", "parse_rules", "parse_rules_yaml", "rules_to_yaml", "same_route_warnings"]

RULE_KEYS = ("primary", "failover", "triggers", "final", "monthly_failover_budget", "notify")
TIER_KEYS = ("target", "timeout", "screen", "health", "tls_verify", "probe")
FINAL_KEYS = ("say", "voicemail", "transcribe")
MAX_SAY_CHARS = 500
_CODE_CLASS = re.compile(r"^[3-6]xx$")


class RulesError(ValueError):
    """A rules file was refused; `problems` lists every reason, each naming where and what.
    `source` is the file they are about, when there is one; `lines()` names it once on each line."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {p}" for p in self.problems] if self.source else list(self.problems)

    def __str__(self) -> str:
        return "\n".join(self.lines())


def parse_rules_yaml(
    text: str, *, source: str | None = None, known_numbers: Iterable[str] = (), allow_private: bool = False
) -> dict[str, Rule]:
    """Load a rules file's YAML text and judge it; raise RulesError with every problem found.
    A hostile file (too large, anchors and aliases, nested too deep) is refused with one problem."""
    try:
        doc, duplicates = load_yaml(text)
    except LoadError as exc:
        raise RulesError([str(exc)], source=source) from None
    try:
        rules = parse_rules(doc, known_numbers=known_numbers, allow_private=allow_private)
    except RulesError as exc:
        raise RulesError(duplicates + exc.problems, source=source) from None
    if duplicates:
        raise RulesError(duplicates, source=source)
    return rules


def parse_rules(doc: object, *, known_numbers: Iterable[str] = (), allow_private: bool = False) -> dict[str, Rule]:
    """Judge a loaded rules document; return number -> Rule, or raise RulesError with every problem.
    `allow_private`: whether probed hosts may be loopback or private addresses (the deployment's
    `settings().allow_private_targets`); link-local, metadata, unspecified and multicast never may."""
    problems: list[str] = []
    if doc is None:
        raise RulesError(['the rules file is empty; it needs a top-level "numbers:" mapping'])
    if not isinstance(doc, dict):
        raise RulesError([f'the top level must be a mapping with the key "numbers", not {_kind(doc)}'])
    for key in doc:
        if key != "numbers":
            problems.append(f'unknown top-level key {_show(key)}; the only allowed key is "numbers"')
    if "numbers" not in doc:
        problems.append('the top-level key "numbers" is missing')
    numbers = doc.get("numbers")
    if numbers is None:
        numbers = {}  # "numbers:" with nothing under it: no rules yet
    if not isinstance(numbers, dict):
        problems.append(f'"numbers" must be a mapping of phone numbers to rules, not {_kind(numbers)}')
        numbers = {}

    # First the keys, so that a target pointing at any number of the file is seen as a loop.
    # A refused key still has its body judged (number None), so every problem shows at once.
    keyed: list[tuple[str, str | None, object]] = []  # (location, E.164 number, body)
    seen: dict[str, str] = {}
    for raw_key, body in numbers.items():
        where = f"numbers.{_show(raw_key)}"
        number = _judge_number_key(raw_key, where, problems)
        if number is not None and number in seen:
            problems.append(f"{where}: {_show(raw_key)} is the same number as {seen[number]}; give each number once")
            number = None
        elif number is not None:
            seen[number] = _show(raw_key)
        keyed.append((where, number, body))

    known = {_normalized_or_same(n) for n in known_numbers}
    judge = _Judge(problems, own_numbers=set(seen), known_numbers=known - set(seen), allow_private=allow_private)
    rules: dict[str, Rule] = {}
    for where, number, body in keyed:
        rule = judge.rule(where, number, body)
        if rule is not None and number is not None:
            rules[number] = rule
    if problems:
        raise RulesError(problems)
    return rules


def rules_to_yaml(rules: Mapping[str, Rule]) -> str:
    """Write rules as a rules file that `parse_rules_yaml` reads back to the same rules."""
    doc = {"numbers": {number: rule.to_doc() for number, rule in rules.items()}}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


class _Judge:
    """Judges the parts of one rule, appending each problem to the shared list."""

    def __init__(
        self, problems: list[str], *, own_numbers: set[str], known_numbers: set[str], allow_private: bool
    ) -> None:
        self.problems = problems
        self.own_numbers = own_numbers
        self.known_numbers = known_numbers
        self.allow_private = allow_private

    def rule(self, where: str, number: str | None, body: object) -> Rule | None:
        before = len(self.problems)
        if not isinstance(body, dict):
            self.problems.append(
                f"{where}: must be a mapping with at least primary: {{target: ...}}, not {_kind(body)}"
            )
            return None
        self._unknown_keys(where, body, RULE_KEYS)
        primary: Tier | None = None
        if "primary" not in body:
            self.problems.append(f'{where}: "primary" is missing; every number needs a primary target')
        else:
            primary = self.tier(f"{where}.primary", body["primary"])
        failover = self._failover(where, body.get("failover"))
        triggers = self._triggers(f"{where}.triggers", body.get("triggers"))
        final = self._final(f"{where}.final", body.get("final"))
        self._ring_time(where, body)
        notify = judge_notify(f"{where}.notify", body.get("notify"), self.problems)
        budget = body.get("monthly_failover_budget")
        if budget is not None and (not _is_int(budget) or budget < 1):
            self.problems.append(
                f"{where}.monthly_failover_budget: {_show(budget)} must be a whole number of failovers, 1 or more"
            )
        if number is None or primary is None or len(self.problems) > before:
            return None
        return Rule(
            number=number,
            tiers=(primary, *failover),
            triggers=triggers,
            final=final,
            monthly_failover_budget=budget,
            notify=notify,
        )

    def tier(self, where: str, body: object) -> Tier | None:
        if not isinstance(body, dict):
            self.problems.append(
                f'{where}: must be a mapping like {{target: "+14155550111", timeout: 20}}, not {_kind(body)}'
            )
            return None
        before = len(self.problems)
        self._unknown_keys(where, body, TIER_KEYS)
        target: str | None = None
        if "target" not in body:
            self.problems.append(f'{where}: "target" is missing')
        else:
            target = self._target(f"{where}.target", body["target"])
            if target is not None:
                self._probed_address(f"{where}.target", target)
        timeout = body.get("timeout", DEFAULT_TIMEOUT)
        if not _is_int(timeout) or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
            self.problems.append(
                f"{where}.timeout: {_show(timeout)} must be a whole number of seconds "
                f"from {MIN_TIMEOUT} to {MAX_TIMEOUT}"
            )
        screen = body.get("screen", False)
        if not isinstance(screen, bool):
            self.problems.append(f"{where}.screen: {_show(screen)} must be true or false")
        tls_verify = body.get("tls_verify", True)
        if not isinstance(tls_verify, bool):
            self.problems.append(f"{where}.tls_verify: {_show(tls_verify)} must be true or false")
        health = body.get("health")
        if health is not None:
            self._health(f"{where}.health", health)
        probe = body.get("probe", True)
        if not isinstance(probe, bool):
            self.problems.append(f"{where}.probe: {_show(probe)} must be true or false")
        elif not probe and health is not None:
            self.problems.append(f"{where}.probe: false contradicts health: {_show(health)}; keep one of them")
        if target is None or len(self.problems) > before:
            return None
        return Tier(
            target=target,
            timeout=timeout,
            screen=screen,
            health=health,
            tls_verify=tls_verify,
            probe=probe is not False,
        )

    def _target(self, where: str, value: object) -> str | None:
        if _is_int(value):
            self.problems.append(f"{where}: {value} was read as a number, not text; {_quote_hint(value)}")
            return None
        if not isinstance(value, str):
            self.problems.append(
                f"{where}: {_show(value)} must be an E.164 number or a sip:/sips: URI, not {_kind(value)}"
            )
            return None
        try:
            target = normalize_target(value)
        except TargetError as exc:
            self.problems.append(f"{where}: {exc}")
            return None
        if target in self.own_numbers:
            self.problems.append(f"{where}: {_show(value)} is itself a number in these rules (a loop)")
            return None
        if target in self.known_numbers:
            self.problems.append(
                f"{where}: {_show(value)} is a number already routed by failover-did (a loop); "
                "dial the destination behind it instead"
            )
            return None
        return target

    def _health(self, where: str, value: object) -> None:
        if not isinstance(value, str):
            self.problems.append(f"{where}: {_show(value)} must be an http(s) URL or a sip:/sips: URI")
            return
        if value.lower().startswith(("sip:", "sips:")):
            try:
                parse_sip_uri(value)
            except SipUriError as exc:
                self.problems.append(f"{where}: {_show(value)} is not a valid SIP URI: {exc}")
                return
        elif problem := health_url_problem(value):
            self.problems.append(f"{where}: {_show(value)}: {problem}")
            return
        self._probed_address(where, value)

    def _probed_address(self, where: str, value: str) -> None:
        """Refuse a probed host written as an address the checker may not probe (never resolves names)."""
        host = probed_host(value)
        problem = address_problem(host, allow_private=self.allow_private) if host else None
        if problem:
            self.problems.append(f"{where}: {_show(value)}: {problem}")

    def _ring_time(self, where: str, body: dict[Any, Any]) -> None:
        """Refuse a cascade ringing longer than RING_MAX_SECONDS; bad timeouts are reported by `tier`."""
        failover = body.get("failover")
        bodies = [body.get("primary"), *(failover if isinstance(failover, list) else [])]
        timeouts = [b.get("timeout", DEFAULT_TIMEOUT) if isinstance(b, dict) else None for b in bodies]
        if not all(_is_int(t) and MIN_TIMEOUT <= t <= MAX_TIMEOUT for t in timeouts):
            return
        valid = [t for t in timeouts if _is_int(t)]
        if ring_seconds(valid) > RING_MAX_SECONDS:
            self.problems.append(
                f"{where}: {ring_text(valid)}; at most {RING_MAX_SECONDS} s is allowed (callers' networks "
                "typically give up after 90-180 s): shorten the timeouts or drop tiers"
            )

    def _failover(self, where: str, value: object) -> list[Tier]:
        if value is None:
            return []
        where = f"{where}.failover"
        if not isinstance(value, list):
            self.problems.append(f"{where}: must be a list of tiers, not {_kind(value)}")
            return []
        if len(value) > MAX_FAILOVER_TIERS:
            self.problems.append(f"{where}: {len(value)} tiers; at most {MAX_FAILOVER_TIERS} are allowed")
        tiers = [self.tier(f"{where}[{i}]", item) for i, item in enumerate(value)]
        return [t for t in tiers if t is not None]

    def _triggers(self, where: str, value: object) -> frozenset[str]:
        if value is None:
            return frozenset(DEFAULT_TRIGGERS)
        if not isinstance(value, list) or not value:
            self.problems.append(
                f'{where}: must be a non-empty list such as [timeout, busy, failed, "503"]; '
                f"leave it out for the default [{', '.join(DEFAULT_TRIGGERS)}]"
            )
            return frozenset(DEFAULT_TRIGGERS)
        triggers: set[str] = set()
        for i, item in enumerate(value):
            trigger = _trigger(item)
            if trigger is None:
                self.problems.append(f"{where}[{i}]: {_show(item)} is not a trigger; {_trigger_hint(item)}")
            else:
                triggers.add(trigger)
        return frozenset(triggers)

    def _final(self, where: str, value: object) -> Final:
        if value is None:
            return Final()
        if not isinstance(value, dict):
            self.problems.append(f'{where}: must be a mapping like {{say: "...", voicemail: true}}, not {_kind(value)}')
            return Final()
        self._unknown_keys(where, value, FINAL_KEYS)
        say = value.get("say", Final.say)
        if not isinstance(say, str) or not say.strip():
            self.problems.append(f"{where}.say: {_show(say)} must be a non-empty text")
        elif len(say) > MAX_SAY_CHARS:
            self.problems.append(f"{where}.say: {len(say)} characters; at most {MAX_SAY_CHARS} are allowed")
        elif problem := text_problem(say):
            self.problems.append(f"{where}.say: {problem}")
        voicemail = value.get("voicemail", False)
        if not isinstance(voicemail, bool):
            self.problems.append(f"{where}.voicemail: {_show(voicemail)} must be true or false")
        transcribe = value.get("transcribe", False)
        if not isinstance(transcribe, bool):
            self.problems.append(f"{where}.transcribe: {_show(transcribe)} must be true or false")
        elif transcribe and voicemail is not True:
            self.problems.append(f"{where}.transcribe: true needs voicemail: true (there is nothing to transcribe)")
        if not isinstance(say, str) or not isinstance(voicemail, bool) or not isinstance(transcribe, bool):
            return Final()
        return Final(say=say, voicemail=voicemail, transcribe=transcribe)

    def _unknown_keys(self, where: str, body: dict[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in body:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            self.problems.append(f"{where}: unknown key {_show(key)}{hint}; allowed keys: {', '.join(allowed)}")


def _judge_number_key(raw_key: object, where: str, problems: list[str]) -> str | None:
    """The E.164 form of a `numbers:` key, or None after noting the problem."""
    if _is_int(raw_key):
        problems.append(f"{where}: the number was read as an integer because it is not quoted; {_quote_hint(raw_key)}")
        return None
    if not isinstance(raw_key, str):
        problems.append(f'{where}: {_show(raw_key)} must be a phone number in quotes, e.g. "+14155550100"')
        return None
    try:
        number = normalize_target(raw_key)
    except TargetError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if not number.startswith("+"):
        problems.append(f"{where}: {_show(raw_key)} must be a Twilio phone number in E.164 form, not a SIP URI")
        return None
    return number


def _trigger(item: object) -> str | None:
    """The stored form of one trigger, or None when it is not one."""
    if _is_int(item):
        return str(item) if 300 <= item <= 699 else None
    if not isinstance(item, str):
        return None
    text = item.strip().lower()
    if text in STATUS_TRIGGERS or _CODE_CLASS.match(text):
        return text
    if text.isascii() and text.isdigit() and len(text) == 3 and 300 <= int(text) <= 699:
        return text
    return None


def _trigger_hint(item: object) -> str:
    if isinstance(item, str) and item.strip().lower() in ("no-answer", "noanswer", "no_answer"):
        return 'use "timeout" for a call nobody answered'
    return 'allowed: timeout, busy, failed, a SIP code 300..699 (e.g. "503") or a class "3xx".."6xx"'


def _quote_hint(value: int) -> str:
    suggestion = f"+{value}"
    try:
        normalize_target(suggestion)
    except TargetError:
        return 'write it in quotes with the leading "+" and country code, e.g. "+14155550100"'
    return f'write it in quotes: "{suggestion}"'


def _normalized_or_same(number: str) -> str:
    try:
        return normalize_target(number)
    except TargetError:
        return number


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Dumper(yaml.SafeDumper):
    """A safe dumper that double-quotes text with line breaks or control characters.

    PyYAML may write such text plain or single-quoted, and reading it back folds the breaks
    (a NEL or a newline comes back as a space); double quotes keep every character as an escape.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None if value.isprintable() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
