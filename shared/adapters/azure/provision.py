"""Creating what the Azure adapters expect to find, where it is missing: the Cosmos DB
database and containers (as ``cosmos_layout`` lays them out), and the Service Bus
queues, topic, subscriptions and filter rules (as infra/ declares them).

For a local run (``ocm azure init``): in Azure, Terraform creates all of it, and the
app's identity may not. Nothing that exists is changed (but for a subscription's
``$Default`` rule, which lets every event through), so a second run creates nothing;
what exists but is not as expected is reported, not altered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from azure.core.credentials_async import AsyncTokenCredential
from azure.cosmos.aio import CosmosClient
from azure.cosmos.exceptions import CosmosResourceNotFoundError
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.management import SqlRuleFilter

from shared.adapters.azure.cosmos import create_containers
from shared.adapters.azure.cosmos_layout import layout
from shared.ports import ContainerSpec, Subscription

RULE = "event-types"
"""The name of each subscription's filter rule (infra/modules/servicebus)."""
DEFAULT_RULE = "$Default"
"""The accept-everything rule Service Bus gives a new subscription."""

Status = Literal["created", "exists", "removed", "differs"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # database, container, queue, topic, subscription, rule
    name: str
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    lock_duration: timedelta
    max_delivery_count: int


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    topic: str
    name: str
    lock_duration: timedelta
    max_delivery_count: int
    sql_filter: str


@dataclass(frozen=True, slots=True)
class ServiceBusLayout:
    """The entities a namespace needs, with the properties infra/ gives them."""

    queues: tuple[QueueSpec, ...]
    topics: tuple[str, ...]
    subscriptions: tuple[SubscriptionSpec, ...]
    duplicate_detection_window: timedelta


def sql_filter(subscription: Subscription) -> str:
    """The port's subscription rule in Service Bus SQL filter syntax: a delimited
    identifier names the application property (``[type]``, whatever the reserved
    words are), as infra/modules/servicebus writes it."""
    if subscription.only is None:
        return "1=1"
    field, values = subscription.only
    if not values:
        return "1=0"
    quoted = [f"""'{v.replace("'", "''")}'""" for v in values]
    if len(quoted) == 1:
        return f"[{field}] = {quoted[0]}"
    return f"[{field}] IN ({', '.join(quoted)})"


def build_admin_client(
    fully_qualified_namespace: str | None,
    connection_string: str | None,
    credential: AsyncTokenCredential | None,
) -> ServiceBusAdministrationClient:
    """As ``build_service_bus_client`` picks: a connection string wins, else the
    namespace by identity."""
    if connection_string:
        return ServiceBusAdministrationClient.from_connection_string(connection_string)
    if fully_qualified_namespace and credential is not None:
        return ServiceBusAdministrationClient(fully_qualified_namespace, credential)
    raise ValueError("Service Bus needs a fully qualified namespace and a credential")


async def provision_cosmos(
    client: CosmosClient, database_name: str, specs: Sequence[ContainerSpec]
) -> list[Outcome]:
    """The database and every container of ``specs`` (needs the account key: creating
    them is a control-plane operation no data-plane role allows)."""
    outcomes: list[Outcome] = []
    database = client.get_database_client(database_name)
    try:
        await database.read()
        outcomes.append(Outcome("database", database_name, "exists"))
    except CosmosResourceNotFoundError:
        database = await client.create_database(database_name)
        outcomes.append(Outcome("database", database_name, "created"))
    found = {c["id"]: c async for c in database.list_containers()}
    missing = []
    for spec in specs:
        expected = list(layout(spec).partition_key_paths)
        if spec.name not in found:
            missing.append(spec)
            outcomes.append(Outcome("container", spec.name, "created"))
            continue
        paths = list((found[spec.name].get("partitionKey") or {}).get("paths") or [])
        if paths == expected:
            outcomes.append(Outcome("container", spec.name, "exists"))
        else:
            detail = f"partitioned by {paths}, the adapter expects {expected}: recreate it"
            outcomes.append(Outcome("container", spec.name, "differs", detail))
    await create_containers(database, missing)
    return outcomes


async def provision_service_bus(
    admin: ServiceBusAdministrationClient, entities: ServiceBusLayout
) -> list[Outcome]:
    """Every queue, topic and subscription of ``entities`` and each subscription's
    filter rule (needs the Manage right: Azure Service Bus Data Owner)."""
    window = entities.duplicate_detection_window
    outcomes: list[Outcome] = []
    queues = {q.name async for q in admin.list_queues()}
    for queue in entities.queues:
        if queue.name in queues:
            outcomes.append(Outcome("queue", queue.name, "exists"))
            continue
        await admin.create_queue(
            queue.name,
            lock_duration=queue.lock_duration,
            max_delivery_count=queue.max_delivery_count,
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=window,
            dead_lettering_on_message_expiration=True,
            enable_batched_operations=True,
            enable_partitioning=False,
        )
        outcomes.append(Outcome("queue", queue.name, "created"))
    topics = {t.name async for t in admin.list_topics()}
    for topic in entities.topics:
        if topic in topics:
            outcomes.append(Outcome("topic", topic, "exists"))
            continue
        await admin.create_topic(
            topic,
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=window,
            enable_batched_operations=True,
            enable_partitioning=False,
        )
        outcomes.append(Outcome("topic", topic, "created"))
    for subscription in entities.subscriptions:
        outcomes += await _subscription(admin, subscription)
    return outcomes


async def _subscription(
    admin: ServiceBusAdministrationClient, spec: SubscriptionSpec
) -> list[Outcome]:
    """One subscription and its rule; the ``$Default`` rule goes once the filter rule
    is in place (Terraform's provider deletes it the same way)."""
    name = f"{spec.topic}/{spec.name}"
    outcomes: list[Outcome] = []
    existing = {s.name async for s in admin.list_subscriptions(spec.topic)}
    if spec.name in existing:
        outcomes.append(Outcome("subscription", name, "exists"))
    else:
        await admin.create_subscription(
            spec.topic,
            spec.name,
            lock_duration=spec.lock_duration,
            max_delivery_count=spec.max_delivery_count,
            dead_lettering_on_message_expiration=True,
            dead_lettering_on_filter_evaluation_exceptions=True,
            enable_batched_operations=True,
        )
        outcomes.append(Outcome("subscription", name, "created"))
    rules = {r.name async for r in admin.list_rules(spec.topic, spec.name)}
    if RULE in rules:
        outcomes.append(Outcome("rule", f"{name}/{RULE}", "exists"))
    else:
        rule_filter = SqlRuleFilter(spec.sql_filter)
        await admin.create_rule(spec.topic, spec.name, RULE, filter=rule_filter)
        outcomes.append(Outcome("rule", f"{name}/{RULE}", "created", spec.sql_filter))
    if DEFAULT_RULE in rules:
        await admin.delete_rule(spec.topic, spec.name, DEFAULT_RULE)
        outcomes.append(Outcome("rule", f"{name}/{DEFAULT_RULE}", "removed", "takes every event"))
    return outcomes
