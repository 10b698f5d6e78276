"""What the use cases depend on: ports and settings, built by shared.bootstrap."""

from __future__ import annotations

import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.config import Settings
from shared.domain.channels import Catalog
from shared.http_client import LazyClient
from shared.ports import Callbacks, Clock, DocumentStore, Queue, SecretStore, Sender
from shared.services.lookups import LookupCache

Route = tuple[str, str, bool]
"""An event's tenant, type, and whether some webhook of the tenant wants it."""


async def _nothing_to_flush() -> None:
    return None


@dataclass
class Deps:
    settings: Settings
    store: DocumentStore
    queue: Queue
    secrets: SecretStore
    clock: Clock
    senders: Mapping[str, Sender]
    """Each provider's sender, by provider name."""
    catalog: Catalog = field(default_factory=lambda: Catalog(()))
    """Every (type, provider) a channel may use."""
    callbacks: Mapping[str, Callbacks] = field(default_factory=dict)
    """Each provider's callback verifier and parser, by provider name."""
    webhook_http: LazyClient = field(
        default_factory=lambda: LazyClient(allow_private=False, timeout=15.0)
    )
    """The webhook deliverer's client (its connections reused across deliveries)."""
    rng: random.Random = field(default_factory=random.Random)
    flush: Callable[[], Awaitable[None]] = field(default=_nothing_to_flush)
    """Awaits durability of every write so far: the embedded store commits writes
    in groups; Cosmos writes are durable on return, so there it does nothing."""
    lookups: LookupCache = field(default_factory=LookupCache)
    """API keys and channels by name, cached briefly (see shared.services.lookups)."""
    rate_buckets: dict[str, Any] = field(default_factory=dict)
    """Each rate-limit bucket's state on this instance (identity.rates)."""
    platform_limits: dict[str, float] = field(default_factory=dict)
    """The settings' limits, read once (identity.limits.platform_limits)."""
    failed_sources: dict[str, Any] = field(default_factory=dict)
    """Failed authentications per source address on this instance (identity.failures)."""
    event_routes: weakref.WeakKeyDictionary[
        Queue, dict[Route, tuple[dict[str, str | int] | None, bool]]
    ] = field(default_factory=weakref.WeakKeyDictionary)
    """Per queue: whether an event reaches a subscriber of its events topic, by tenant,
    type and webhook interest, with its properties if so, and whether one other than
    analytics takes it (events.publish.route, guaranteed)."""
    buffers: dict[str, Any] = field(default_factory=dict)
    """What this instance gathers before sending it on (events.facts_out)."""
    before_close: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    """Run first when the platform stops (a buffer's last flush)."""
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Releases resources (files, connections) when the platform stops."""
    async_closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """The same for clients that close asynchronously (the Azure SDKs), in order."""
