"""What infra/ deploys that the code relies on, traced out of the Terraform files,
and the code's side of the same facts (its bindings).

Everything here is by entity name, as the code names things; ``tests/infra/checks.py``
compares the two sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import function_app
from ocm_cli.triggers import app_functions
from tests.infra.hcl import Computed, Module, Scope

INFRA = Path(__file__).resolve().parents[2] / "infra"
EVENT_TYPES = re.compile(r"each\.value\.\w+")
CUSTOM_FILTER = "each.value.sql_filter"
# The outbox publishes each event with the application property `type`
# (shared/services/messaging/outbox.py); SQL filters name it as a delimited identifier.
FILTERED_PROPERTY = "[type]"


@dataclass
class Deployment:
    """The Terraform side: evaluated attributes, by entity name."""

    app_settings: dict[str, Any]
    site_config: dict[str, Any]
    queues: dict[str, dict[str, Any]]
    topics: dict[str, dict[str, Any]]
    subscriptions: dict[tuple[str, str], dict[str, Any]]  # by (topic, subscription)
    containers: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Trigger:
    """The code side of one binding: its function and its string attributes."""

    function: str
    binding: dict[str, str]


def read_deployment(infra: Path = INFRA) -> Deployment:
    """The Function App, Service Bus entities and Cosmos containers of ``infra``."""
    scopes = list(Scope(Module.load(infra)).descendants())

    def instances(kind: str) -> list[tuple[Scope, dict[str, Any]]]:
        return [found for scope in scopes for found in scope.instances(kind)]

    apps = instances("azurerm_function_app_flex_consumption")
    if len(apps) != 1:
        raise ValueError(f"expected one Flex Consumption Function App, found {len(apps)}")
    ((_, app),) = apps
    subscriptions: dict[tuple[str, str], dict[str, Any]] = {}
    for scope, subscription in instances("azurerm_servicebus_subscription"):
        _, topic = scope.instance(subscription["topic_id"])
        subscriptions[(topic["name"], subscription["name"])] = {**subscription, "rules": []}
    for scope, rule in instances("azurerm_servicebus_subscription_rule"):
        owner, subscription = scope.instance(rule["subscription_id"])
        _, topic = owner.instance(subscription["topic_id"])
        rule["event_types"] = _filter_event_types(scope, rule["sql_filter"])
        rule["filters_on_type"] = FILTERED_PROPERTY in str(rule["sql_filter"])
        subscriptions[(topic["name"], subscription["name"])]["rules"].append(rule)
    return Deployment(
        app_settings=app["app_settings"],
        site_config=app["site_config"][0],
        queues={q["name"]: q for _, q in instances("azurerm_servicebus_queue")},
        topics={t["name"]: t for _, t in instances("azurerm_servicebus_topic")},
        subscriptions=subscriptions,
        containers={c["name"]: c for _, c in instances("azurerm_cosmosdb_sql_container")},
    )


def _filter_event_types(scope: Scope, sql_filter: Any) -> Any:
    """The event types a rule's SQL filter is built from (the one list it reads)."""
    text = sql_filter.expression if isinstance(sql_filter, Computed) else str(sql_filter)
    references = set(EVENT_TYPES.findall(text))
    if CUSTOM_FILTER in references:  # a subscription with its own SQL filter uses that
        custom = scope.evaluate("${" + CUSTOM_FILTER + "}")
        if custom is not None:
            return Computed(str(custom))
        references.discard(CUSTOM_FILTER)
    references = sorted(references)
    if len(references) != 1:
        return Computed(text)
    return scope.evaluate("${" + references[0] + "}")


def code_triggers() -> list[Trigger]:
    """Every non-HTTP binding of the one Function App, with its string attributes."""
    triggers = []
    for function in app_functions(function_app.app):  # the SDK lists them only once
        for binding in function.get_bindings():
            data = binding.get_dict_repr()
            if data["type"] in {"httpTrigger", "http"}:
                continue
            strings = {
                k: v for k, v in data.items() if isinstance(v, str) and k not in {"name", "type"}
            }
            triggers.append(Trigger(str(function.get_function_name()), strings))
    return triggers


def app_setting(value: Any) -> str | Computed:
    """A Terraform value as the app sees it: app settings are strings."""
    if isinstance(value, Computed):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
