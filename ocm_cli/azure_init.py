"""``ocm azure init``: create, where missing, the Cosmos DB database and containers
and the Service Bus entities that the app's settings name, for a local run of the
Functions host (``func start``) on the emulators or a namespace of your own.

In Azure, Terraform (infra/) creates all of it. What exists is left as it is, so a
second run creates nothing; it prints what it created and what already existed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.cosmos.exceptions import CosmosHttpResponseError
from azure.identity.aio import DefaultAzureCredential
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from shared.adapters.azure.cosmos import build_cosmos_client
from shared.adapters.azure.provision import (
    Outcome,
    QueueSpec,
    ServiceBusLayout,
    SubscriptionSpec,
    build_admin_client,
    provision_cosmos,
    provision_service_bus,
    sql_filter,
)
from shared.bootstrap import topic_subscriptions
from shared.config import Settings
from shared.containers import CONTAINERS

DUPLICATE_DETECTION_WINDOW = timedelta(minutes=10)
"""infra/main.tf's duplicate_detection_history_time_window (PT10M), which the outbox's
deterministic message ids rely on."""

NO_COSMOS_KEY = (
    "Cosmos DB: skipped. Creating a database or a container is a control-plane "
    "operation, which an Entra ID (data-plane) token cannot do: on a deployed account "
    "Terraform created them (infra/containers.tf). For the emulator or a key-enabled "
    "account of your own, set OCM_COSMOS_KEY (docs/operations.md)."
)
SERVICE_BUS_EMULATOR = (
    "Service Bus: skipped, the connection string names the Service Bus emulator, "
    "whose entities come from its own Config.json; declare these there:"
)
MANAGE = (
    "Listing and creating entities needs the Manage right: the Azure Service Bus Data "
    "Owner role on the namespace for your Entra ID sign-in, or a connection string "
    "whose policy has Manage (docs/operations.md)."
)
MANAGE_REFUSED = "Service Bus refused ({reason}). " + MANAGE
NO_TOKEN = "Service Bus: no Entra ID token ({reason}); sign in with `az login`. " + MANAGE
COSMOS_REFUSED = (
    "Cosmos DB refused the key (HTTP {status}): OCM_COSMOS_KEY must be the account's "
    "key (the emulator's well-known one); a Terraform-deployed account has keys off."
)

Print = Callable[[str], None]


def local_settings(path: Path) -> dict[str, Any]:
    """The settings among the ``Values`` of a local.settings.json (as ``func start``
    reads them); every other value there is the Functions host's."""
    values = json.loads(path.read_text())["Values"]
    return {k: v for k, v in values.items() if k in Settings.model_fields}


def service_bus_layout(settings: Settings) -> ServiceBusLayout:
    """The queues, topic and subscriptions the settings name, as infra/main.tf
    declares them: the same lock, delivery count and filter rules."""
    lock = timedelta(seconds=settings.OCM_QUEUE_LOCK_SECONDS)
    deliveries = settings.OCM_QUEUE_MAX_DELIVERY_COUNT
    queues = (
        settings.OCM_OUTBOUND_QUEUE,
        settings.OCM_PROVIDER_EVENTS_QUEUE,
        settings.OCM_WEBHOOK_QUEUE,
    )
    topic = settings.OCM_EVENTS_TOPIC
    subscriptions = topic_subscriptions(settings)[topic]
    return ServiceBusLayout(
        queues=tuple(QueueSpec(name, lock, deliveries) for name in queues),
        topics=(topic,),
        subscriptions=tuple(
            SubscriptionSpec(topic, s.name, lock, deliveries, sql_filter(s)) for s in subscriptions
        ),
        duplicate_detection_window=DUPLICATE_DETECTION_WINDOW,
    )


def is_emulator(connection_string: str | None) -> bool:
    """Whether a Service Bus connection string names the emulator
    (``…;UseDevelopmentEmulator=true``)."""
    for part in (connection_string or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "usedevelopmentemulator":
            return value.strip().lower() == "true"
    return False


async def run(
    settings: Settings,
    *,
    admin: ServiceBusAdministrationClient | None = None,
    out: Print = print,
) -> int:
    """Cosmos DB, then Service Bus; 0 when everything exists as expected (``admin``:
    a client of one's own, else one from the settings)."""
    # The SDK logs every request at INFO, and azure.identity a failed sign-in at
    # WARNING, at length; what went wrong is printed here in a line.
    sdk = logging.getLogger("azure")
    level = sdk.level
    if settings.OCM_LOG_LEVEL != "DEBUG":
        sdk.setLevel(logging.ERROR)
    try:
        outcomes: list[Outcome] = []
        code = await _cosmos(settings, outcomes, out)
        if admin is None and is_emulator(settings.ServiceBusConnection):
            out(SERVICE_BUS_EMULATOR)
            _describe(service_bus_layout(settings), out)
        else:
            code = max(code, await _service_bus(settings, admin, outcomes, out))
    finally:
        sdk.setLevel(level)
    created = sum(o.status == "created" for o in outcomes)
    existed = sum(o.status == "exists" for o in outcomes)
    out(f"{created} created, {existed} already existed.")
    return max(code, 1 if any(o.status == "differs" for o in outcomes) else 0)


async def _cosmos(settings: Settings, outcomes: list[Outcome], out: Print) -> int:
    endpoint, key = settings.OCM_COSMOS_ENDPOINT or "", settings.OCM_COSMOS_KEY
    if not key:
        out(NO_COSMOS_KEY)
        return 0
    out(f"Cosmos DB {endpoint}, database {settings.OCM_COSMOS_DATABASE}:")
    try:
        async with build_cosmos_client(endpoint, key) as client:
            found = await provision_cosmos(client, settings.OCM_COSMOS_DATABASE, CONTAINERS)
    except CosmosHttpResponseError as exc:
        if exc.status_code in (401, 403):
            out(COSMOS_REFUSED.format(status=exc.status_code))
        else:
            out(f"Cosmos DB answered HTTP {exc.status_code}: {_first_line(exc)}")
        return 1
    except ServiceRequestError as exc:
        out(f"Cosmos DB cannot be reached at {endpoint}: {_first_line(exc)}")
        return 1
    _report(found, out)
    outcomes += found
    return 0


async def _service_bus(
    settings: Settings,
    admin: ServiceBusAdministrationClient | None,
    outcomes: list[Outcome],
    out: Print,
) -> int:
    namespace = settings.ServiceBusConnection__fullyQualifiedNamespace
    credential = None if admin or settings.ServiceBusConnection else DefaultAzureCredential()
    client = admin or build_admin_client(namespace, settings.ServiceBusConnection, credential)
    out(f"Service Bus {client.fully_qualified_namespace}:")
    try:
        async with client:
            found = await provision_service_bus(client, service_bus_layout(settings))
    except HttpResponseError as exc:  # ClientAuthenticationError too: a 401, or no token
        if exc.response is None:
            out(NO_TOKEN.format(reason=_first_line(exc)))
        elif exc.status_code in (401, 403):
            out(MANAGE_REFUSED.format(reason=f"HTTP {exc.status_code}"))
        else:
            out(f"Service Bus answered HTTP {exc.status_code}: {_first_line(exc)}")
        return 1
    except ServiceRequestError as exc:
        out(f"Service Bus cannot be reached: {_first_line(exc)}")
        return 1
    finally:
        if credential is not None:
            await credential.close()
    _report(found, out)
    outcomes += found
    return 0


def _report(outcomes: Sequence[Outcome], out: Print) -> None:
    for o in outcomes:
        out(f"  {o.status:<8} {o.kind} {o.name}" + (f" ({o.detail})" if o.detail else ""))


def _describe(entities: ServiceBusLayout, out: Print) -> None:
    for queue in entities.queues:
        out(f"  queue {queue.name}")
    for topic in entities.topics:
        out(f"  topic {topic}")
    for sub in entities.subscriptions:
        out(f"  subscription {sub.topic}/{sub.name}, rule: {sub.sql_filter}")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
