"""What infra/ deploys that the code relies on, traced out of the Terraform files,
and the code's side of the same facts (its bindings).

Everything here is by entity name, as the code names things; ``tests/infra/checks.py``
compares the two sides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import function_app
from ocm_cli.triggers import app_functions
from tests.infra.hcl import Computed, Module, Scope

INFRA = Path(__file__).resolve().parents[2] / "infra"
# The outbox publishes each event with the application property `type`
# (shared/services/messaging/outbox.py); SQL filters name it as a delimited identifier.
FILTERED_PROPERTY = "[type]"
TYPE_FILTER = re.compile(r"^\[type\] IN \(((?:'[^']*'(?:, )?)+)\)$")
ALL_EVENTS = "1=1"
# The root module's locals that hold the scale model's inputs (infra/scale.tf).
SCALE_INPUTS = (
    "cost_per_message",
    "service_bus_premium_operations_per_second_per_unit",
    "dispatch_seconds",
)


@dataclass
class Deployment:
    """The Terraform side: evaluated attributes, by entity name."""

    app_settings: dict[str, Any]
    site_config: dict[str, Any]
    queues: dict[str, dict[str, Any]]
    topics: dict[str, dict[str, Any]]
    subscriptions: dict[tuple[str, str], dict[str, Any]]  # by (topic, subscription)
    containers: dict[str, dict[str, Any]]
    # The stores and the app as a whole, for the scale tier's checks.
    cosmos_account: dict[str, Any] = field(default_factory=dict)
    cosmos_database: dict[str, Any] = field(default_factory=dict)
    service_bus_namespace: dict[str, Any] = field(default_factory=dict)
    function_app: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    scale_inputs: dict[str, Any] = field(default_factory=dict)  # infra/scale.tf's figures
    # What `terraform plan` would stop on (failed variable validations) or warn of.
    validation_errors: list[str] = field(default_factory=list)
    check_warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Trigger:
    """The code side of one binding: its function and its string attributes."""

    function: str
    binding: dict[str, str]


def read_deployment(infra: Path = INFRA, variables: Mapping[str, Any] | None = None) -> Deployment:
    """The Function App, Service Bus entities and Cosmos containers of ``infra``,
    with ``variables`` set as a tfvars file would (the others at their defaults)."""
    root = Scope(Module.load(infra), variables)
    scopes = list(root.descendants())

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
        rule["event_types"] = _filter_event_types(rule["sql_filter"])
        rule["filters_on_type"] = FILTERED_PROPERTY in str(rule["sql_filter"])
        subscriptions[(topic["name"], subscription["name"])]["rules"].append(rule)
    ((_, account),) = instances("azurerm_cosmosdb_account")
    ((_, database),) = instances("azurerm_cosmosdb_sql_database")
    ((_, namespace),) = instances("azurerm_servicebus_namespace")
    return Deployment(
        app_settings=app["app_settings"],
        site_config=app["site_config"][0],
        queues={q["name"]: q for _, q in instances("azurerm_servicebus_queue")},
        topics={t["name"]: t for _, t in instances("azurerm_servicebus_topic")},
        subscriptions=subscriptions,
        containers={c["name"]: c for _, c in instances("azurerm_cosmosdb_sql_container")},
        cosmos_account=account,
        cosmos_database=database,
        service_bus_namespace=namespace,
        function_app=app,
        outputs={name: root.output(name) for name in root.module.outputs},
        scale_inputs={name: root.lookup("local", name) for name in SCALE_INPUTS},
        validation_errors=[e for scope in scopes for e in scope.validation_errors()],
        check_warnings=root.check_warnings(),
    )


def _filter_event_types(sql_filter: Any) -> Any:
    """The event types a rule's SQL filter lets through: ``["*"]`` for all,
    ``Computed`` for a filter that is not a plain list of types."""
    if isinstance(sql_filter, Computed):
        return sql_filter
    if sql_filter == ALL_EVENTS:
        return ["*"]
    match = TYPE_FILTER.match(str(sql_filter))
    if match is None:
        return Computed(str(sql_filter))
    return re.findall(r"'([^']*)'", match[1])


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
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Terraform renders the number 2.0 as "2"
    return str(value)
