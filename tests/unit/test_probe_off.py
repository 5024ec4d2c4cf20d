"""`probe: false` on a tier: the rules file accepts it, refuses it beside `health:` and anything but a
boolean, keeps it through storage, and the checker's plan then leaves the tier unprobed."""

from __future__ import annotations

import textwrap

import pytest

from failover_did.health.checker import probe_plan, probed
from failover_did.rules.model import Rule, Tier
from failover_did.rules.validate import RulesError, parse_rules_yaml, rules_to_yaml

QUIET = "sip:desk@quiet.example.com"


def rules(tier: str) -> str:
    return textwrap.dedent(
        f"""\
        numbers:
          "+14155550100":
            primary: {tier}
            failover: [{{target: "+14155550111"}}]
        """
    )


def test_probe_false_is_kept_and_round_trips() -> None:
    parsed = parse_rules_yaml(rules(f'{{target: "{QUIET}", probe: false}}'))
    tier = parsed["+14155550100"].primary
    assert tier.probe is False and tier.is_judged and not tier.is_probed
    assert "probe: false" in rules_to_yaml(parsed)
    assert Rule.from_doc("+14155550100", parsed["+14155550100"].to_doc()).primary == tier
    assert "probe" not in Tier(QUIET).to_doc() and Tier(QUIET).is_probed


@pytest.mark.parametrize(
    ("tier", "problem"),
    [
        (f'{{target: "{QUIET}", probe: "no"}}', 'primary.probe: "no" must be true or false'),
        (
            f'{{target: "{QUIET}", probe: false, health: "https://pbx.example.com/up"}}',
            'probe: false contradicts health: "https://pbx.example.com/up"',
        ),
    ],
)
def test_probe_must_be_a_boolean_and_not_beside_a_health_target(tier: str, problem: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules_yaml(rules(tier))
    assert len(err.value.problems) == 1 and problem in err.value.problems[0], err.value.problems


def test_the_plan_keeps_live_only_targets_but_does_not_probe_them() -> None:
    quiet = Rule("+14155550100", (Tier(QUIET, probe=False), Tier("+14155550111")))
    shared = Rule("+14155550200", (Tier(QUIET), Tier("sip:dr@dr.example.net", probe=False)))
    plan = probe_plan([quiet])
    assert list(plan) == [QUIET] and probed(plan) == []
    both = probe_plan([quiet, shared])
    assert probed(both) == [QUIET]  # probed where any rule wants probes
    assert [u.probed for u in both["sip:dr@dr.example.net"]] == [False]
