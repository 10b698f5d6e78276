"""Who listens to a tenant's events: the patterns of its webhook subscriptions.

The outbox marks the events some webhook of the tenant may want (``webhooks = "1"``,
``INTEREST``); the events topic's webhooks subscription takes only those, so a tenant
without webhooks costs nothing past the topic. The subscriptions are the webhooks
context's documents; here they are only read, for their ``events`` patterns (and by
the fan-out, whole), and cached briefly: whoever changes one calls ``forget``.
"""

from __future__ import annotations

from shared.containers import WEBHOOKS
from shared.domain.models import Document
from shared.domain.webhooks import takes_type
from shared.ports import Query
from shared.services.deps import Deps

INTEREST = "webhooks"
"""The application property marking events some webhook of the tenant may want."""


def _cache_key(tenant_id: str) -> tuple[str, str]:
    return (WEBHOOKS, tenant_id)


async def subscriptions(deps: Deps, tenant_id: str) -> list[Document]:
    """The tenant's webhook subscriptions (cached briefly; a tenant has few)."""

    async def load() -> Document:
        page = await deps.store.query(
            WEBHOOKS, Query(scope=tenant_id, order_by="created_at", limit=1000)
        )
        return {"items": page.items}

    cached = await deps.lookups.get(_cache_key(tenant_id), load)
    return list((cached or {}).get("items") or [])


def forget(deps: Deps, tenant_id: str) -> None:
    """Call after changing a tenant's subscriptions: this process sees it at once."""
    deps.lookups.forget(_cache_key(tenant_id))


async def interest(deps: Deps, tenant_id: str) -> frozenset[str]:
    """The event type patterns the tenant's webhooks take (empty: none). Disabled
    ones count too: their events are kept, so a replay can cover the time they were
    off (a fan-out sends nothing to them)."""
    return frozenset(p for s in await subscriptions(deps, tenant_id) for p in s["events"])


def wants(patterns: frozenset[str], event_type: str) -> bool:
    return bool(patterns) and takes_type(patterns, event_type)


def event_properties(
    tenant_id: str, event_type: str, webhooks: frozenset[str]
) -> dict[str, str | int]:
    """An event's application properties: what topic subscriptions filter on
    (``webhooks``: the event types the tenant's webhooks take)."""
    properties: dict[str, str | int] = {"tenant_id": tenant_id, "type": event_type}
    if wants(webhooks, event_type):
        properties[INTEREST] = "1"
    return properties
