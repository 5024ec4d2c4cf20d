"""The rule form: its fields <-> one number's rule in the rules-file format, judged by the one validator
(`failover_did.rules.validate`), whose problems are placed beside the fields they concern. Pure: no I/O.

Field names: `primary_target`, `primary_timeout`, `primary_screen`, `primary_health`, `primary_no_probe`,
`primary_no_tls_verify`; the same per failover tier as `tier_target_1`, `tier_timeout_1`, ... (numbered
from 1); `trigger_timeout`, `trigger_busy`, `trigger_failed` (check boxes) and `sip_triggers` ("503, 5xx");
`final_say`, `final_voicemail`, `final_transcribe`; `monthly_failover_budget`; `notify_email`, `notify_sms`
(one or more, separated by commas or lines); `number` (a new number only) and `version` (hidden)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from failover_did.rules.model import DEFAULT_FINAL_SAY, MAX_FAILOVER_TIERS, STATUS_TRIGGERS, Rule, Tier
from failover_did.rules.targets import TargetError, normalize_target
from failover_did.rules.text import show
from failover_did.rules.validate import RulesError, parse_rules

MAX_FIELDS = 150
MAX_FIELD_CHARS = 4000
MAX_TIER_INDEX = 2 * MAX_FAILOVER_TIERS  # more rows than this is no form of ours
TIER_FIELDS = ("target", "timeout", "screen", "health", "no_probe", "no_tls_verify")
GENERAL = ""  # the key of problems that concern no single field
_TIER_FIELD = re.compile(r"tier_(target|timeout|screen|health|no_probe|no_tls_verify)_(\d{1,3})")
_ACTION = re.compile(r"(save|add_tier|remove_tier_(\d{1,3})|up_tier_(\d{1,3})|down_tier_(\d{1,3}))")
_SPLIT = re.compile(r"[\s,;]+")
_WHOLE = re.compile(r"[0-9]{1,9}")


class FormRefused(ValueError):
    """The request is no submission of our form (too many or too long fields, an unknown action)."""


@dataclass(frozen=True)
class TierFields:
    target: str = ""
    timeout: str = ""
    screen: bool = False
    health: str = ""
    no_probe: bool = False
    no_tls_verify: bool = False

    @property
    def blank(self) -> bool:
        return not self.target.strip() and not self.health.strip()


@dataclass(frozen=True)
class RuleForm:
    number: str = ""
    version: str = ""
    primary: TierFields = TierFields()
    tiers: tuple[TierFields, ...] = ()
    triggers: frozenset[str] = frozenset(STATUS_TRIGGERS)  # the status triggers checked
    sip_triggers: str = ""
    final_say: str = ""
    final_voicemail: bool = False
    final_transcribe: bool = False
    monthly_failover_budget: str = ""
    notify_email: str = ""
    notify_sms: str = ""


@dataclass
class Judgement:
    rule: Rule | None
    errors: dict[str, list[str]] = field(default_factory=dict)  # field name (GENERAL: none) -> messages

    def at(self, name: str) -> list[str]:
        return self.errors.get(name, [])

    @property
    def general(self) -> list[str]:
        return self.errors.get(GENERAL, [])


# --- rule -> form ------------------------------------------------------------------------------


def _tier_fields(tier: Tier) -> TierFields:
    return TierFields(
        target=tier.target,
        timeout=str(tier.timeout),
        screen=tier.screen,
        health=tier.health or "",
        no_probe=not tier.probe,
        no_tls_verify=not tier.tls_verify,
    )


def from_rule(rule: Rule, version: int | None) -> RuleForm:
    sip = [t for t in sorted(rule.triggers) if t not in STATUS_TRIGGERS]
    return RuleForm(
        number=rule.number,
        version="" if version is None else str(version),
        primary=_tier_fields(rule.primary),
        tiers=tuple(_tier_fields(t) for t in rule.failover),
        triggers=frozenset(rule.triggers & STATUS_TRIGGERS),
        sip_triggers=", ".join(sip),
        final_say=rule.final.say,
        final_voicemail=rule.final.voicemail,
        final_transcribe=rule.final.transcribe,
        monthly_failover_budget="" if rule.monthly_failover_budget is None else str(rule.monthly_failover_budget),
        notify_email="\n".join(rule.notify.email) if rule.notify else "",
        notify_sms="\n".join(rule.notify.sms) if rule.notify else "",
    )


def blank_form() -> RuleForm:
    """A new number's form: a primary and one failover tier to fill in, the default triggers."""
    return RuleForm(tiers=(TierFields(),), final_say=DEFAULT_FINAL_SAY)


# --- posted fields -> form -----------------------------------------------------------------------


def from_fields(fields: Mapping[str, str]) -> RuleForm:
    """The form as posted; FormRefused when it cannot be ours (bounded before anything is built)."""
    if len(fields) > MAX_FIELDS:
        raise FormRefused(f"{len(fields)} fields; a rule form has at most {MAX_FIELDS}")
    for name, value in fields.items():
        if len(value) > MAX_FIELD_CHARS:
            raise FormRefused(f"the field {name[:40]!r} has {len(value):,} characters; at most {MAX_FIELD_CHARS:,}")
    rows: dict[int, dict[str, str]] = {}
    for name, value in fields.items():
        match = _TIER_FIELD.fullmatch(name)
        if match:
            index = int(match.group(2))
            if not 1 <= index <= MAX_TIER_INDEX:
                raise FormRefused(f"the field {name!r} names tier {index}; tiers are numbered 1 to {MAX_TIER_INDEX}")
            rows.setdefault(index, {})[match.group(1)] = value
    return RuleForm(
        number=fields.get("number", "").strip(),
        version=fields.get("version", "").strip(),
        primary=_tier_from(lambda key: fields.get(f"primary_{key}")),
        tiers=tuple(_tier_from(rows[i].get) for i in sorted(rows)),
        triggers=frozenset(t for t in STATUS_TRIGGERS if _checked(fields.get(f"trigger_{t}"))),
        sip_triggers=fields.get("sip_triggers", ""),
        final_say=fields.get("final_say", "").replace("\r\n", "\n"),
        final_voicemail=_checked(fields.get("final_voicemail")),
        final_transcribe=_checked(fields.get("final_transcribe")),
        monthly_failover_budget=fields.get("monthly_failover_budget", "").strip(),
        notify_email=fields.get("notify_email", ""),
        notify_sms=fields.get("notify_sms", ""),
    )


def _checked(value: str | None) -> bool:
    return value is not None and value != ""


def _tier_from(get: Any) -> TierFields:
    return TierFields(
        target=(get("target") or "").strip(),
        timeout=(get("timeout") or "").strip(),
        screen=_checked(get("screen")),
        health=(get("health") or "").strip(),
        no_probe=_checked(get("no_probe")),
        no_tls_verify=_checked(get("no_tls_verify")),
    )


def action_of(value: str | None) -> str:
    """The button pressed: save (the default), add_tier, remove_tier_N, up_tier_N, down_tier_N."""
    action = (value or "save").strip()
    if not _ACTION.fullmatch(action):
        raise FormRefused(f"{action[:40]!r} is not an action of this form")
    return action


def rearranged(form: RuleForm, action: str) -> RuleForm:
    """The form after a tier button: a blank tier added at the end, tier N removed or moved up or down."""
    tiers = list(form.tiers)
    if action == "add_tier":
        return replace(form, tiers=(*tiers, TierFields()))
    verb, _, number = action.rpartition("_")
    index = int(number) - 1
    if not 0 <= index < len(tiers):
        return form
    if verb == "remove_tier":
        del tiers[index]
    elif verb == "up_tier" and index > 0:
        tiers[index - 1], tiers[index] = tiers[index], tiers[index - 1]
    elif verb == "down_tier" and index < len(tiers) - 1:
        tiers[index + 1], tiers[index] = tiers[index], tiers[index + 1]
    return replace(form, tiers=tuple(tiers))


# --- form -> rules-file document ----------------------------------------------------------------


def _number_or_text(text: str) -> int | str | None:
    """A whole number as an int (what the file would hold); anything else as typed, for the validator to
    name; blank: None (left out)."""
    if not text:
        return None
    return int(text) if _WHOLE.fullmatch(text) else text


def _tier_doc(tier: TierFields) -> dict[str, Any]:
    doc: dict[str, Any] = {"target": tier.target}
    timeout = _number_or_text(tier.timeout)
    if timeout is not None:
        doc["timeout"] = timeout
    if tier.screen:
        doc["screen"] = True
    if tier.health:
        doc["health"] = tier.health
    if tier.no_probe:
        doc["probe"] = False
    if tier.no_tls_verify:
        doc["tls_verify"] = False
    return doc


def _words(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text) if w]


def to_doc(form: RuleForm) -> dict[str, Any]:
    """The rule as the rules file would hold it under `numbers: {NUMBER: ...}`; blank tier rows are left out."""
    triggers = [t for t in ("timeout", "busy", "failed") if t in form.triggers] + _words(form.sip_triggers)
    doc: dict[str, Any] = {
        "primary": _tier_doc(form.primary),
        "failover": [_tier_doc(t) for t in form.tiers if not t.blank],
        "triggers": triggers,
        "final": {"say": form.final_say, "voicemail": form.final_voicemail},
    }
    if form.final_transcribe:
        doc["final"]["transcribe"] = True
    budget = _number_or_text(form.monthly_failover_budget)
    if budget is not None:
        doc["monthly_failover_budget"] = budget
    email, sms = _words(form.notify_email), _words(form.notify_sms)
    if email or sms:
        doc["notify"] = {"email": email, "sms": sms}
    return doc


# --- judging ----------------------------------------------------------------------------------------


def judge(form: RuleForm, number: str, *, known_numbers: Iterable[str] = (), allow_private: bool = False) -> Judgement:
    """The rule the form describes for `number`, or every problem the validator names, each at its field."""
    number_problem = _number_problem(number)
    try:
        rules = parse_rules(
            {"numbers": {number: to_doc(form)}}, known_numbers=known_numbers, allow_private=allow_private
        )
    except RulesError as error:
        judgement = Judgement(None)
        if number_problem:
            judgement.errors.setdefault("number", []).append(number_problem)
        for problem in error.problems:
            name, message = field_of(problem, number, form, bad_number=number_problem is not None)
            if name == "number" and number_problem:
                continue  # said once, in our words
            judgement.errors.setdefault(name, []).append(message)
        return judgement
    return Judgement(rules[number])


def _number_problem(number: str) -> str | None:
    if not number:
        return 'give the Twilio number in E.164 form, e.g. "+14155550100"'
    try:
        normalized = normalize_target(number)
    except TargetError as error:
        return str(error)
    if not normalized.startswith("+"):
        return f"{show(number)} must be a Twilio phone number in E.164 form, not a SIP URI"
    return None


_PATH = re.compile(r"((?:\.[a-z_]+|\[\d+\])*): ")
_TIER_KEY = {"target": "target", "timeout": "timeout", "screen": "screen", "health": "health"}
_TIER_KEY |= {"probe": "no_probe", "tls_verify": "no_tls_verify"}


def field_of(problem: str, number: str, form: RuleForm, *, bad_number: bool = False) -> tuple[str, str]:
    """(field name, message) of one validator problem: `numbers."+1…".failover[0].timeout: …` belongs to
    `tier_timeout_1`; a problem of the rule as a whole is GENERAL (or `number` when the number is bad)."""
    prefix = f"numbers.{show(number)}"
    if not problem.startswith(prefix):
        return GENERAL, problem
    match = _PATH.match(problem, len(prefix))
    if match is None:
        return GENERAL, problem
    path, message = match.group(1), problem[match.end() :]
    return _field_of_path(path, form, bad_number), message


def _field_of_path(path: str, form: RuleForm, bad_number: bool) -> str:
    parts = re.findall(r"\.([a-z_]+)|\[(\d+)\]", path)
    keys = [name or int(index) for name, index in parts]
    if not keys:
        return "number" if bad_number else GENERAL
    head = keys[0]
    if head == "primary":
        return f"primary_{_TIER_KEY.get(str(keys[1]), 'target')}" if len(keys) > 1 else "primary_target"
    if head == "failover":
        if len(keys) < 2 or not isinstance(keys[1], int):
            return "failover"
        row = _form_row(form, keys[1])
        key = _TIER_KEY.get(str(keys[2]), "target") if len(keys) > 2 else "target"
        return f"tier_{key}_{row}"
    if head == "final":
        return {"voicemail": "final_voicemail", "transcribe": "final_transcribe"}.get(
            str(keys[1]) if len(keys) > 1 else "", "final_say"
        )
    if head == "notify":
        return "notify_sms" if len(keys) > 1 and keys[1] == "sms" else "notify_email"
    if head in ("triggers", "monthly_failover_budget"):
        return str(head)
    return GENERAL


def _form_row(form: RuleForm, index: int) -> int:
    """The form's tier number (from 1) of the document's failover[index]: blank rows were left out."""
    filled = [i for i, tier in enumerate(form.tiers, 1) if not tier.blank]
    return filled[index] if index < len(filled) else index + 1
