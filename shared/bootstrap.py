"""The composition root: picks adapters from settings and builds them once, lazily.

Nothing here runs at import time; the first ``get_deps()`` builds the platform.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from shared import telemetry
from shared.config import Settings, get_settings
from shared.containers import CONTAINERS
from shared.domain.channels import Catalog
from shared.domain.facts import ANALYTICS
from shared.http_client import LazyClient
from shared.ports import (
    Callbacks,
    Clock,
    DocumentStore,
    ProviderEnv,
    Queue,
    SecretStore,
    Sender,
    Subscription,
)
from shared.services.deps import Deps
from shared.services.lookups import LookupCache

_lock = threading.Lock()
_deps: Deps | None = None


def build(settings: Settings) -> Deps:
    """A new platform for these settings (tests build their own)."""
    telemetry.configure(settings)
    if settings.OCM_BACKEND == "azure":
        telemetry.apply_log_level(settings)
        return _build_azure(settings)
    return _build_embedded(settings)


def _build_embedded(settings: Settings) -> Deps:
    from shared.adapters.embedded.clock import SystemClock
    from shared.adapters.embedded.secrets import EncryptedSecretStore, load_or_create_key
    from shared.adapters.embedded.sqlite_db import SqliteDatabase
    from shared.adapters.embedded.sqlite_queue import SqliteQueue
    from shared.adapters.embedded.sqlite_store import SqliteDocumentStore

    clock = SystemClock()
    db = SqliteDatabase(settings.database_path)
    store = SqliteDocumentStore(db, CONTAINERS, clock)
    queue = SqliteQueue(
        db,
        clock,
        topics=topic_subscriptions(settings),
        max_delivery_count=settings.OCM_QUEUE_MAX_DELIVERY_COUNT,
        duplicate_window=timedelta(minutes=10),
    )
    key = load_or_create_key(settings.OCM_DATA_DIR, settings.OCM_SECRET_KEY)
    secrets = EncryptedSecretStore(db, key)
    return platform(settings, store, queue, secrets, clock, flush=db.flush, closers=[db.close])


def _build_azure(settings: Settings) -> Deps:
    """Cosmos DB, Service Bus and Key Vault, reached by the app's identity.

    Nothing connects here: the SDK clients open their connections on first use,
    inside the event loop of the function that uses them.
    """
    from azure.identity.aio import DefaultAzureCredential

    from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client
    from shared.adapters.azure.keyvault import KeyVaultSecretStore, build_secret_client
    from shared.adapters.azure.servicebus import ServiceBusQueue, build_service_bus_client
    from shared.adapters.embedded.clock import SystemClock

    assert settings.OCM_COSMOS_ENDPOINT and settings.OCM_KEY_VAULT_URL  # validated
    credential = DefaultAzureCredential()
    cosmos = build_cosmos_client(
        settings.OCM_COSMOS_ENDPOINT, settings.OCM_COSMOS_KEY or credential
    )
    store = CosmosDocumentStore(
        cosmos.get_database_client(settings.OCM_COSMOS_DATABASE), CONTAINERS, client=cosmos
    )
    queue = ServiceBusQueue(
        build_service_bus_client(
            settings.ServiceBusConnection__fullyQualifiedNamespace,
            settings.ServiceBusConnection,
            credential,
        ),
        topics=[settings.OCM_EVENTS_TOPIC],
        subscriptions=topic_subscriptions(settings),
    )
    secrets = KeyVaultSecretStore(
        build_secret_client(settings.OCM_KEY_VAULT_URL, credential),
        ttl_seconds=settings.OCM_SECRET_CACHE_SECONDS,
    )
    closers = [queue.close, secrets.close, cosmos.close, credential.close]
    return platform(settings, store, queue, secrets, SystemClock(), async_closers=closers)


def topic_subscriptions(settings: Settings) -> dict[str, list[Subscription]]:
    """The events topic's subscriptions and their rules, as infra/ declares them
    (SQL filters, checked by tests/infra): the embedded queue applies them, and the
    Service Bus adapter asks them whether an event would reach anyone."""
    return {
        settings.OCM_EVENTS_TOPIC: [
            events_log_subscription(settings),
            webhooks_subscription(settings),
            *([analytics_subscription(settings)] if settings.OCM_ANALYTICS_ENABLED else []),
        ]
    }


def webhooks_subscription(settings: Settings) -> Subscription:
    """Events of tenants with webhooks only (the outbox marks them; infra's SQL filter
    ``[webhooks] = '1'`` is the same rule in Service Bus)."""
    return Subscription(settings.OCM_WEBHOOKS_SUBSCRIPTION, only=("webhooks", ("1",)))


def analytics_subscription(settings: Settings) -> Subscription:
    """Message events analytics counts (the outbox marks them; infra's SQL filter
    ``[analytics] = '1'`` is the same rule in Service Bus)."""
    return Subscription(settings.OCM_ANALYTICS_SUBSCRIPTION, only=(ANALYTICS, ("1",)))


def events_log_subscription(settings: Settings) -> Subscription:
    types = settings.events_log_types
    only = None if types is None else ("type", types)
    return Subscription(settings.OCM_EVENTS_LOG_SUBSCRIPTION, only=only)


@dataclass(frozen=True, slots=True)
class Providers:
    catalog: Catalog
    senders: dict[str, Sender]
    callbacks: dict[str, Callbacks]


def build_providers(settings: Settings, clock: Clock) -> Providers:
    """Every provider module's specs, sender and callbacks (senders connect lazily)."""
    from shared.adapters.providers import discover

    modules = discover()
    env = ProviderEnv(clock=clock, allow_private_egress=settings.private_egress_allowed)
    return Providers(
        catalog=Catalog(spec for m in modules for spec in m.specs),
        senders={m.name: m.build(env) for m in modules},
        callbacks={m.name: m.callbacks for m in modules if m.callbacks is not None},
    )


def platform(
    settings: Settings,
    store: DocumentStore,
    queue: Queue,
    secrets: SecretStore,
    clock: Clock,
    *,
    flush: Callable[[], Awaitable[None]] | None = None,
    closers: Sequence[Callable[[], None]] = (),
    async_closers: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Deps:
    """The platform on these ports: every provider, the lookup cache, and the webhook
    deliverer's client (closed after the other clients)."""
    providers = build_providers(settings, clock)
    webhook_http = LazyClient(
        allow_private=settings.private_egress_allowed,
        timeout=settings.OCM_WEBHOOK_TIMEOUT_SECONDS,
    )
    deps = Deps(
        settings=settings,
        store=store,
        queue=queue,
        secrets=secrets,
        clock=clock,
        senders=providers.senders,
        catalog=providers.catalog,
        callbacks=providers.callbacks,
        webhook_http=webhook_http,
        lookups=LookupCache(settings.OCM_LOOKUP_CACHE_SECONDS),
        closers=list(closers),
        async_closers=[*async_closers, webhook_http.close],
    )
    if flush is not None:
        deps.flush = flush
    return deps


def get_deps() -> Deps:
    """The process-wide platform, built on first use."""
    global _deps
    if _deps is None:
        with _lock:
            if _deps is None:
                _deps = build(get_settings())
    return _deps


def set_deps(deps: Deps | None) -> None:
    """Install a platform (the local runtime and tests), or forget it (None)."""
    global _deps
    with _lock:
        _deps = deps


async def close(deps: Deps) -> None:
    for flush in deps.before_close:
        try:
            await flush()
        except Exception:  # what it held is recounted by the reconciliation
            logging.getLogger(__name__).exception("a flush before closing failed")
    for sender in deps.senders.values():
        await sender.close()
    for closer in deps.closers:
        closer()
    for async_closer in deps.async_closers:
        await async_closer()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Deps]:
    """The platform built from ``settings`` for one task (a CLI command), closed after."""
    deps = build(settings)
    try:
        yield deps
    finally:
        await close(deps)
