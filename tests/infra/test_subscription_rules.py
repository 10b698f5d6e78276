"""The events topic's subscription rules in the code and in Terraform are one rule.

On Azure the outbox asks the Service Bus adapter whether an event reaches any
subscription (``reaches_anyone``) and sends nothing that none keeps (azure review
C8: it used to answer True always, so every event was published and billed). The
adapter answers from the code's rules (``bootstrap.topic_subscriptions``); the
broker applies Terraform's SQL filters. If they differed, events would be lost (the
code too strict) or billed for nothing (too loose): every event type, with and
without the webhooks mark, must be taken by the same subscriptions on both sides.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.bootstrap import topic_subscriptions
from shared.config import Settings
from shared.domain.webhooks import EVENT_TYPES
from tests.infra.deployment import Computed, Deployment

EQUALS = re.compile(r"^\[(\w+)\] = '([^']*)'$")


def terraform_takes(rule: dict[str, Any], properties: dict[str, str]) -> bool:
    """Terraform's rule, read as Service Bus evaluates it: the subscription's event
    types (``[type] IN (…)``, ``*`` for all), or its own ``[name] = 'value'``."""
    types = rule["event_types"]
    if isinstance(types, Computed):  # a custom sql_filter
        match = EQUALS.match(types.expression)
        assert match, f"a filter this check cannot read: {types.expression}"
        return properties.get(match[1]) == match[2]
    return "*" in types or properties.get("type") in types


CASES = [
    {"type": t, **({"webhooks": "1"} if hooked else {}), **({"analytics": "1"} if counted else {})}
    for t in EVENT_TYPES
    for hooked in (False, True)
    for counted in (False, True)
]


def rules_disagree(deployment: Deployment, settings: Settings) -> list[str]:
    code = {
        (topic, sub.name): sub
        for topic, subs in topic_subscriptions(settings).items()
        for sub in subs
    }
    problems = sorted(set(code) ^ set(deployment.subscriptions))
    found = [f"only on one side: {p}" for p in problems]
    for key, sub in code.items():
        if key not in deployment.subscriptions:
            continue
        (rule,) = deployment.subscriptions[key]["rules"]
        for case in CASES:
            if sub.takes(case) != terraform_takes(rule, case):
                found.append(f"{key[1]} disagrees on {case}")
    return found


def test_the_code_and_terraform_take_the_same_events_into_each_subscription(
    deployment: Deployment,
) -> None:
    assert rules_disagree(deployment, Settings()) == []


@pytest.mark.parametrize("types", ["message.failed", "message.failed,message.expired,message.sent"])
def test_a_log_subscription_taking_other_types_in_the_code_alone_is_caught(
    deployment: Deployment, types: str
) -> None:
    found = rules_disagree(deployment, Settings(OCM_EVENTS_LOG_TYPES=types))
    assert any("ocm-events-log disagrees" in f for f in found), found
