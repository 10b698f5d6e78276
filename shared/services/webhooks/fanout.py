"""From the events topic to webhook deliveries.

The outbox marks the events of tenants with webhooks (``webhooks = "1"``, see
``interest``); the topic's webhooks subscription takes only those, so a tenant
without webhooks costs nothing here. For each event the fan-out

1. stores it in ``events`` (for replay, kept ``OCM_EVENT_RETENTION_DAYS``), and
2. creates one delivery per matching enabled subscription, under an id derived
   from the subscription and the event, and enqueues its first attempt.

Both steps are idempotent, so a redelivered event changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

import orjson

from shared.containers import EVENTS, WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhooks import delivery_id, matches, payload, takes_type
from shared.ports import Conflict, OutgoingMessage, Query
from shared.services.deps import Deps

log = logging.getLogger(__name__)

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


async def fan_out(deps: Deps, body: bytes) -> str:
    """Handle one event from the webhooks subscription."""
    event: dict[str, Any] = orjson.loads(body)
    tenant_id = event["tenant_id"]
    await _keep(deps, event)
    created = 0
    for subscription in await subscriptions(deps, tenant_id):
        if matches(subscription, event):
            await create_delivery(deps, subscription, event)
            created += 1
    return f"{created} deliveries"


async def _keep(deps: Deps, event: dict[str, Any]) -> None:
    retention = deps.settings.OCM_EVENT_RETENTION_DAYS * 86_400
    doc = {**event, "ttl": retention}
    with contextlib.suppress(Conflict):  # kept already (a redelivery)
        await deps.store.create(EVENTS, doc)


async def create_delivery(
    deps: Deps, subscription: Document, event: dict[str, Any], purpose: str = ""
) -> Document:
    """A delivery of ``event`` to ``subscription`` and its first attempt (idempotent)."""
    doc = _delivery(deps, subscription, event, purpose)
    try:
        written = await deps.store.create(WEBHOOK_DELIVERIES, doc)
    except Conflict:
        existing = await deps.store.read(WEBHOOK_DELIVERIES, doc["tenant_id"], doc["id"])
        written = existing or doc
    await enqueue_delivery(deps, written, 1, None)
    return written


def _delivery(deps: Deps, subscription: Document, event: dict[str, Any], purpose: str) -> Document:
    stamp = to_utc_text(deps.clock.now())
    return {
        "id": delivery_id(subscription["id"], event["id"], purpose),
        "tenant_id": subscription["tenant_id"],
        "webhook_id": subscription["id"],
        "event_id": event["id"],
        "event_type": event["type"],
        "event": payload(event),
        "status": "pending",
        "attempt_count": 0,
        "attempts": [],
        "next_attempt_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
        "ttl": deps.settings.OCM_EVENT_RETENTION_DAYS * 86_400,
    }


async def create_deliveries(
    deps: Deps, subscription: Document, events: list[dict[str, Any]], purpose: str
) -> None:
    """Deliveries of many events to one subscription, their jobs sent together."""
    docs = [_delivery(deps, subscription, event, purpose) for event in events]
    for doc in docs:
        with contextlib.suppress(Conflict):  # made already: a repeated page
            await deps.store.create(WEBHOOK_DELIVERIES, doc)
    await deps.queue.send(deps.settings.OCM_WEBHOOK_QUEUE, [_job(doc, 1) for doc in docs])


async def enqueue_delivery(
    deps: Deps, delivery: Document, attempt: int, due: datetime | None, *, retry: int = 0
) -> None:
    """The job of one attempt (its message id makes a repeat a no-op). A manual retry
    (``retry``: its number) takes an id of its own: the attempt's may have been used
    already by a job that never got to send (the subscription was disabled, say)."""
    await deps.queue.send(deps.settings.OCM_WEBHOOK_QUEUE, [_job(delivery, attempt, due, retry)])


def _job(
    delivery: Document, attempt: int, due: datetime | None = None, retry: int = 0
) -> OutgoingMessage:
    job = {"tenant_id": delivery["tenant_id"], "delivery_id": delivery["id"], "attempt": attempt}
    suffix = f":r{retry}" if retry else ""
    return OutgoingMessage(
        message_id=f"{delivery['id']}:{attempt}{suffix}",
        body=orjson.dumps(job),
        scheduled_at=due,
        subject="webhook",
    )


async def publish_platform_event(
    deps: Deps,
    tenant_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
) -> None:
    """An event about the platform itself (``webhook.endpoint.failing``, …) on the
    events topic, to reach the tenant's other webhooks like any event; publishing
    it twice under one ``event_id`` delivers it once (duplicate detection)."""
    now = deps.clock.now()
    event: dict[str, Any] = {
        "id": event_id or new_id("evt", now),
        "type": event_type,
        "timestamp": to_utc_text(now),
        "tenant_id": tenant_id,
        "data": data,
    }
    properties = event_properties(tenant_id, event_type, await interest(deps, tenant_id))
    topic = deps.settings.OCM_EVENTS_TOPIC
    if deps.queue.reaches_anyone(topic, properties):
        await deps.queue.send(
            topic,
            [
                OutgoingMessage(
                    message_id=event["id"],
                    body=orjson.dumps(event),
                    subject=event_type,
                    application_properties=properties,
                )
            ],
        )
