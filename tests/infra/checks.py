"""How infra/ must agree with the code.

Each ``*_problems`` function returns one sentence per disagreement (none when the
two sides agree), so a failing test says what to change, and a test can show that
a change on either side alone is caught.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from shared.adapters.azure.cosmos_layout import CosmosContainer
from shared.config import Settings
from shared.containers import COUNTERS, MESSAGES, ROLLUPS
from tests.infra.deployment import FILTERED_PROPERTY, Deployment, Trigger, app_setting
from tests.infra.hcl import Computed

SETTING = re.compile(r"%([^%]+)%")
DEAD_LETTER_QUEUE = "/$DeadLetterQueue"
ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
# Settings the Functions host fills from site_config rather than app_settings.
SITE_CONFIG_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "application_insights_connection_string"
}
REQUIRED_VALUES = {"OCM_BACKEND": "azure", "OCM_ENV": "production"}
DUPLICATE_DETECTION_WINDOW = "PT10M"
MAX_LOCK_SECONDS = 300  # Service Bus's maximum lock duration


def binding_problems(
    triggers: Iterable[Trigger],
    deployment: Deployment,
    fields: Mapping[str, FieldInfo] = Settings.model_fields,
) -> list[str]:
    """Every %SETTING% a binding names is a literal app setting equal to the code's
    default, and every queue, topic and subscription it resolves to exists."""
    problems = []
    settings = {k: app_setting(v) for k, v in deployment.app_settings.items()}
    for trigger in triggers:
        where = f"{trigger.function}()"
        resolved = {}
        for key, value in trigger.binding.items():
            for name in SETTING.findall(value):
                problems += _bound_setting_problems(where, key, name, settings, fields)
            resolved[key] = SETTING.sub(lambda m: str(settings.get(m[1], m[0])), value)
        problems += _entity_problems(where, resolved, deployment)
        connection = resolved.get("connection")
        if connection and not any(k.startswith(connection + "__") for k in settings):
            problems.append(
                f"{where}: connection {connection!r} has no identity-based app setting "
                f"({connection}__fullyQualifiedNamespace)"
            )
    return problems


def dead_letter_problems(triggers: Iterable[Trigger], deployment: Deployment) -> list[str]:
    """Every queue and subscription Terraform creates has a trigger on its dead-letter
    queue: what Service Bus parks there never expires and counts against the
    entity's quota, so something must take it, record it and raise the alarm."""
    settings = {k: str(app_setting(v)) for k, v in deployment.app_settings.items()}
    taken = set()
    for trigger in triggers:
        resolved = {
            k: SETTING.sub(lambda m: settings.get(m[1], m[0]), v)
            for k, v in trigger.binding.items()
        }
        if queue := resolved.get("queueName"):
            taken.add(queue)
        elif topic := resolved.get("topicName"):
            taken.add(f"{topic}/{resolved.get('subscriptionName', '')}")
    problems = []
    for queue in deployment.queues:
        if queue + DEAD_LETTER_QUEUE not in taken:
            problems.append(f"queue {queue!r}: no trigger takes its dead letters")
    for topic, subscription in deployment.subscriptions:
        if f"{topic}/{subscription}{DEAD_LETTER_QUEUE}" not in taken:
            problems.append(
                f"subscription {subscription!r} of topic {topic!r}: no trigger takes its "
                "dead letters"
            )
    return problems


def _bound_setting_problems(
    where: str,
    key: str,
    name: str,
    settings: Mapping[str, str | Computed],
    fields: Mapping[str, FieldInfo],
) -> list[str]:
    if name not in settings:
        return [f"{where}: {key} uses %{name}%, which the Function App's app settings lack"]
    value = settings[name]
    if isinstance(value, Computed):
        return [f"{where}: %{name}% is {value.expression}, not a literal Terraform can trace"]
    if name in fields and value != app_setting(fields[name].default):
        return [
            f"{where}: app setting {name}={value!r} differs from the code's default "
            f"{fields[name].default!r} (shared/config.py)"
        ]
    return []


def _entity_problems(where: str, resolved: Mapping[str, str], deployment: Deployment) -> list[str]:
    problems = []
    if queue := resolved.get("queueName"):
        queue = queue.removesuffix(DEAD_LETTER_QUEUE)  # a sub-queue every queue has
        if queue not in deployment.queues:
            problems.append(f"{where}: queue {queue!r} is not in Terraform")
    if topic := resolved.get("topicName"):
        if topic not in deployment.topics:
            problems.append(f"{where}: topic {topic!r} is not in Terraform")
        subscription = resolved.get("subscriptionName", "").removesuffix(DEAD_LETTER_QUEUE)
        if (topic, subscription) not in deployment.subscriptions:
            problems.append(
                f"{where}: subscription {subscription!r} of topic {topic!r} is not in Terraform"
            )
    return problems


def settings_problems(
    deployment: Deployment, fields: Mapping[str, FieldInfo] = Settings.model_fields
) -> list[str]:
    """The Function App sets every deployable setting, with a valid value, and no
    OCM_ setting the code does not know or keeps local."""
    problems = []
    settings = {k: app_setting(v) for k, v in deployment.app_settings.items()}
    for name, field in fields.items():
        if _local_only(field):
            if name in settings:
                problems.append(f"{name} is LOCAL_ONLY in Settings, but the Function App sets it")
        elif name in settings:
            problems += _value_problems(name, settings[name], field)
        elif not _set_by_site_config(name, deployment):
            problems.append(f"Settings.{name} is not set by the Function App's app settings")
    for name in settings:
        if name.startswith("OCM_") and name not in fields:
            problems.append(f"app setting {name} is not a field of Settings (shared/config.py)")
    for name, required in REQUIRED_VALUES.items():
        if settings.get(name) != required:
            problems.append(f"app setting {name} must be {required!r}, not {settings.get(name)!r}")
    return problems


def _local_only(field: FieldInfo) -> bool:
    """Marked LOCAL_ONLY in shared/config.py: Azure does not set it."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("deploy") is False


def _set_by_site_config(name: str, deployment: Deployment) -> bool:
    argument = SITE_CONFIG_SETTINGS.get(name)
    return argument is not None and deployment.site_config.get(argument) is not None


def _value_problems(name: str, value: str | Computed, field: FieldInfo) -> list[str]:
    if isinstance(value, Computed):
        return []  # an endpoint or host name: known once Terraform applies
    annotation: Any = field.annotation
    if field.metadata:  # constraints such as ge=1 or a pattern
        annotation = Annotated[annotation, *field.metadata]
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as error:
        return [
            f"app setting {name}={value!r} is not valid for Settings: {error.errors()[0]['msg']}"
        ]
    return []


def service_bus_problems(
    deployment: Deployment, fields: Mapping[str, FieldInfo] = Settings.model_fields
) -> list[str]:
    """Delivery count, lock, duplicate detection and dead-lettering as the code
    expects them, and the log subscription filtered on the configured event types."""
    problems = []
    settings = {k: app_setting(v) for k, v in deployment.app_settings.items()}
    delivery = settings.get("OCM_QUEUE_MAX_DELIVERY_COUNT")
    code_delivery = fields["OCM_QUEUE_MAX_DELIVERY_COUNT"].default
    lock = settings.get("OCM_QUEUE_LOCK_SECONDS")
    receivers = {
        **deployment.queues,
        **{"/".join(k): v for k, v in deployment.subscriptions.items()},
    }
    for name, entity in receivers.items():
        count = entity.get("max_delivery_count")
        if count != code_delivery or app_setting(count) != delivery:
            problems.append(
                f"{name}: max_delivery_count {count} differs from OCM_QUEUE_MAX_DELIVERY_COUNT "
                f"(code default {code_delivery}, app setting {delivery})"
            )
        seconds = _seconds(entity.get("lock_duration"))
        if seconds is None or seconds > MAX_LOCK_SECONDS or app_setting(seconds) != lock:
            problems.append(
                f"{name}: lock_duration {entity.get('lock_duration')} is not "
                f"OCM_QUEUE_LOCK_SECONDS={lock} (at most {MAX_LOCK_SECONDS} s)"
            )
        if entity.get("dead_lettering_on_message_expiration") is not True:
            problems.append(f"{name}: dead_lettering_on_message_expiration is not true")
    for name, entity in {**deployment.queues, **deployment.topics}.items():
        if entity.get("requires_duplicate_detection") is not True:
            problems.append(f"{name}: requires_duplicate_detection is not true")
        window = entity.get("duplicate_detection_history_time_window")
        if window != DUPLICATE_DETECTION_WINDOW:
            problems.append(
                f"{name}: duplicate detection window {window} is not {DUPLICATE_DETECTION_WINDOW}"
            )
        # A Premium namespace with one messaging partition refuses partitioned
        # entities; express entities do not exist on Premium.
        if entity.get("partitioning_enabled") is not False:
            problems.append(f"{name}: partitioning_enabled is not false (Premium refuses it)")
        if entity.get("express_enabled"):
            problems.append(f"{name}: express_enabled (Premium refuses express entities)")
        if entity.get("max_message_size_in_kilobytes") not in (None, 256) and not _premium(
            deployment
        ):
            problems.append(f"{name}: max_message_size_in_kilobytes is for Premium namespaces only")
    return problems + _log_filter_problems(deployment, settings)


def _log_filter_problems(
    deployment: Deployment, settings: Mapping[str, str | Computed]
) -> list[str]:
    topic = str(settings.get("OCM_EVENTS_TOPIC"))
    name = str(settings.get("OCM_EVENTS_LOG_SUBSCRIPTION"))
    subscription = deployment.subscriptions.get((topic, name))
    if subscription is None:
        return [f"no subscription {name!r} on topic {topic!r} for the event log"]
    wanted = [t.strip() for t in str(settings.get("OCM_EVENTS_LOG_TYPES", "")).split(",")]
    rules = subscription["rules"]
    if len(rules) != 1 or rules[0]["event_types"] != wanted:
        found = [rule["event_types"] for rule in rules]
        return [f"{topic}/{name}: its filter rule takes {found}, not OCM_EVENTS_LOG_TYPES {wanted}"]
    if not rules[0]["filters_on_type"]:
        return [f"{topic}/{name}: its SQL filter does not test {FILTERED_PROPERTY}"]
    return []


def _seconds(duration: Any) -> int | None:
    match = ISO_DURATION.match(duration) if isinstance(duration, str) else None
    if match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def container_problems(layouts: Iterable[CosmosContainer], deployment: Deployment) -> list[str]:
    """Every container of the code's layout exists in Terraform as the adapter
    expects it; Terraform declares no other."""
    problems = []
    wanted = {layout.name: layout for layout in layouts}
    for name in deployment.containers.keys() - wanted.keys():
        problems.append(f"container {name!r} is in Terraform but not in shared/containers.py")
    for name, layout in wanted.items():
        if name not in deployment.containers:
            problems.append(f"container {name!r} is not in Terraform")
            continue
        expected = _container_facts(layout)
        actual = _terraform_container_facts(deployment.containers[name])
        problems += [
            f"container {name!r}: {fact} is {actual[fact]!r} in Terraform, {value!r} in the code"
            for fact, value in expected.items()
            if actual.get(fact) != value
        ]
    return problems


def _container_facts(layout: CosmosContainer) -> dict[str, Any]:
    """The layout, in a form both sides reduce to (order of paths does not matter
    to Cosmos DB; the provider always indexes automatically)."""
    policy = layout.indexing_policy
    return {
        "partition key paths": list(layout.partition_key_paths),
        "partition key kind": layout.partition_key_kind,
        "partition key version": layout.partition_key().get("version"),
        "unique keys": sorted(
            tuple(key["paths"]) for key in layout.unique_key_policy()["uniqueKeys"]
        ),
        "indexing mode": policy["indexingMode"].casefold(),
        "included paths": sorted(p["path"] for p in policy["includedPaths"]),
        "excluded paths": sorted(p["path"] for p in policy["excludedPaths"]),
        "composite indexes": sorted(
            tuple((i["path"], i["order"].casefold()) for i in index)
            for index in policy["compositeIndexes"]
        ),
        "default ttl": layout.default_ttl,
    }


def _terraform_container_facts(container: Mapping[str, Any]) -> dict[str, Any]:
    (policy,) = container.get("indexing_policy", [{}])
    return {
        "partition key paths": container.get("partition_key_paths"),
        "partition key kind": container.get("partition_key_kind", "Hash"),
        "partition key version": container.get("partition_key_version"),
        "unique keys": sorted(tuple(key["paths"]) for key in container.get("unique_key", [])),
        "indexing mode": str(policy.get("indexing_mode", "consistent")).casefold(),
        "included paths": sorted(p["path"] for p in policy.get("included_path", [])),
        "excluded paths": sorted(p["path"] for p in policy.get("excluded_path", [])),
        "composite indexes": sorted(
            tuple((i["path"], str(i["order"]).casefold()) for i in index["index"])
            for index in policy.get("composite_index", [])
        ),
        "default ttl": container.get("default_ttl"),
    }


# --- scale tiers ------------------------------------------------------------------

# What the code writes for every delivered message: these need throughput of their
# own on provisioned throughput (shared/containers.py).
HOT_CONTAINERS = (MESSAGES, COUNTERS, ROLLUPS)
MAX_CONCURRENT_CALLS = "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls"
# Published limits, kept here apart from infra/scale.tf's copies of them.
# Learn "Azure Cosmos DB serverless account performance".
SERVERLESS_CONTAINER_RUS = 5000
# Learn "Throttling operations on Azure Service Bus": credits per second of a
# Standard namespace; a data operation or a filter evaluation costs one.
STANDARD_CREDITS_PER_SECOND = 1000
MESSAGING_UNITS = (1, 2, 4, 8, 16)
# instances x maxConcurrentCalls is rounded down from the concurrency the ceiling
# allows, never above it, and not far below it either (else it is not derived).
CONCURRENCY_SLACK = 0.9


def scale_problems(deployment: Deployment) -> list[str]:
    """The tier's stores are laid out as their kind allows (a serverless account
    has no throughput anywhere and goes with Service Bus Standard; a provisioned
    one gives the hot containers autoscale of their own and the rest a shared
    budget, with Service Bus Premium), and the functions' instances x Service Bus
    calls stay within what those stores sustain."""
    serverless = _serverless(deployment)
    problems = _serverless_problems(deployment) if serverless else _provisioned_problems(deployment)
    return problems + _concurrency_problems(deployment, _ceiling(deployment))


def _serverless(deployment: Deployment) -> bool:
    capabilities = deployment.cosmos_account.get("capabilities") or []
    return any(c.get("name") == "EnableServerless" for c in capabilities)


def _premium(deployment: Deployment) -> bool:
    return deployment.service_bus_namespace.get("sku") == "Premium"


def _autoscale(resource: Mapping[str, Any]) -> int | None:
    settings = resource.get("autoscale_settings") or []
    return settings[0].get("max_throughput") if settings else None


def _serverless_problems(deployment: Deployment) -> list[str]:
    problems = []
    throughputs = {"the database": deployment.cosmos_database} | {
        f"container {name!r}": c for name, c in deployment.containers.items()
    }
    for what, resource in throughputs.items():
        if resource.get("autoscale_settings") or resource.get("throughput") is not None:
            problems.append(f"serverless account: {what} sets throughput (serverless allows none)")
    namespace = deployment.service_bus_namespace
    if namespace.get("sku") != "Standard":
        problems.append(f"serverless tier: Service Bus is {namespace.get('sku')}, not Standard")
    if namespace.get("capacity") not in (None, 0) or namespace.get(
        "premium_messaging_partitions"
    ) not in (None, 0):
        problems.append("serverless tier: Standard namespace with capacity or messaging partitions")
    return problems


def _provisioned_problems(deployment: Deployment) -> list[str]:
    problems = []
    shared = _autoscale(deployment.cosmos_database)
    if not _valid_max(shared):
        problems.append(
            f"provisioned account: the database's shared autoscale maximum is {shared!r}, "
            "not a multiple of 1000 from 1000"
        )
    for name in HOT_CONTAINERS:
        container = deployment.containers.get(name, {})
        if not _valid_max(_autoscale(container)):
            problems.append(
                f"provisioned account: container {name!r} has no autoscale throughput of its own "
                f"({_autoscale(container)!r})"
            )
    for name, container in deployment.containers.items():
        if container.get("throughput") is not None:
            problems.append(f"container {name!r}: manual throughput (autoscale only)")
    namespace = deployment.service_bus_namespace
    if namespace.get("sku") != "Premium":
        problems.append(f"provisioned tier: Service Bus is {namespace.get('sku')}, not Premium")
    if namespace.get("premium_messaging_partitions") != 1:
        problems.append(
            "provisioned tier: premium_messaging_partitions is "
            f"{namespace.get('premium_messaging_partitions')!r}, not 1"
        )
    if namespace.get("capacity") not in MESSAGING_UNITS:
        problems.append(
            f"provisioned tier: capacity {namespace.get('capacity')!r} is not one of "
            f"{MESSAGING_UNITS} messaging units"
        )
    return problems


def _valid_max(value: Any) -> bool:
    return isinstance(value, int) and value >= 1000 and value % 1000 == 0


def _ceiling(deployment: Deployment) -> float:
    """Delivered messages per second the stores sustain, from the resources as
    deployed and infra/scale.tf's per-message figures."""
    cost = deployment.scale_inputs["cost_per_message"]
    rus_per_message: Mapping[str, float] = cost["cosmos_request_units"]
    if _serverless(deployment):
        # Every container its own 5,000 RU/s; the uncosted rest as if on one.
        available = {name: SERVERLESS_CONTAINER_RUS for name in rus_per_message}
        rest = SERVERLESS_CONTAINER_RUS
    else:
        available = {
            name: _autoscale(deployment.containers.get(name, {})) for name in rus_per_message
        }
        available = {name: rus for name, rus in available.items() if rus}
        rest = _autoscale(deployment.cosmos_database) or 0
    ceilings = [available[name] / rus_per_message[name] for name in available]
    rest_per_message = cost["cosmos_request_units_total"] - sum(
        rus_per_message[name] for name in available
    )
    if rest_per_message > 0:
        ceilings.append(rest / rest_per_message)
    namespace = deployment.service_bus_namespace
    if _premium(deployment):
        per_unit = deployment.scale_inputs["service_bus_premium_operations_per_second_per_unit"]
        operations = (namespace.get("capacity") or 0) * per_unit
    else:
        operations = STANDARD_CREDITS_PER_SECOND
    # Each send to the events topic is evaluated against every subscription's rule.
    topic = str(app_setting(deployment.app_settings.get("OCM_EVENTS_TOPIC")))
    evaluations = cost["topic_sends"] * sum(1 for t, _ in deployment.subscriptions if t == topic)
    ceilings.append(operations / (cost["service_bus_operations"] + evaluations))
    return min(ceilings)


def _concurrency_problems(deployment: Deployment, ceiling: float) -> list[str]:
    problems = []
    budget = max(1, math.floor(ceiling * deployment.scale_inputs["dispatch_seconds"]))
    calls = _integer(deployment.app_settings.get(MAX_CONCURRENT_CALLS))
    instances = _integer(deployment.function_app.get("maximum_instance_count"))
    if calls is None or calls < 1:
        problems.append(
            f"app setting {MAX_CONCURRENT_CALLS} is "
            f"{deployment.app_settings.get(MAX_CONCURRENT_CALLS)!r}, not a number of calls"
        )
    if instances is None or not 1 <= instances <= 1000:
        problems.append(
            f"maximum_instance_count is {deployment.function_app.get('maximum_instance_count')!r}"
        )
    if calls is None or instances is None:
        return problems
    if instances * calls > budget:
        problems.append(
            f"{instances} instances x {calls} maxConcurrentCalls = {instances * calls} concurrent "
            f"dispatches, above the {budget} the stores sustain ({ceiling:.1f} messages/s x "
            f"{deployment.scale_inputs['dispatch_seconds']} s): sustained throttling"
        )
    elif instances * calls < CONCURRENCY_SLACK * budget:
        problems.append(
            f"{instances} instances x {calls} maxConcurrentCalls = {instances * calls}, far below "
            f"the {budget} concurrent dispatches the stores sustain: not derived from the tier"
        )
    scale = deployment.outputs.get("scale", {})
    reported = {
        "ceiling_messages_per_second": math.floor(ceiling),
        "function_maximum_instance_count": instances,
        "service_bus_max_concurrent_calls": calls,
    }
    for name, value in reported.items():
        if scale.get(name) != value:
            problems.append(f"output scale.{name} is {scale.get(name)!r}, the deployment's {value}")
    return problems


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
