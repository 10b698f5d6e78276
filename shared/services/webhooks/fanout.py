"""From the events topic to webhook deliveries.

The topic's webhooks subscription takes only the events of tenants with webhooks
(``shared.services.events.interest``). For each event the fan-out

1. stores it in ``events`` (for replay, kept ``OCM_EVENT_RETENTION_DAYS``), and
2. creates one delivery per matching enabled subscription, under an id derived
   from the subscription and the event, and enqueues its first attempt.

Both steps are idempotent, so a redelivered event changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson

from shared.containers import EVENTS, WEBHOOK_DELIVERIES
from shared.domain.facts import ANALYTICS
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhooks import delivery_id, matches, payload
from shared.ports import Conflict
from shared.services.deps import Deps
from shared.services.events import interest
from shared.services.webhooks import jobs

log = logging.getLogger(__name__)


async def fan_out(deps: Deps, body: bytes) -> str:
    """Handle one event from the webhooks subscription."""
    event: dict[str, Any] = orjson.loads(body)
    event.pop(ANALYTICS, None)  # the analytics consumer's, never a webhook's
    tenant_id = event["tenant_id"]
    await _keep(deps, event)
    created = 0
    for subscription in await interest.subscriptions(deps, tenant_id):
        if matches(subscription, event):
            await create_delivery(deps, subscription, event)
            created += 1
    return f"{created} deliveries"


async def record_dead_lettered(deps: Deps, body: bytes, reason: str | None) -> str:
    """An event the webhooks subscription gave up on (its fan-out failed every
    delivery): kept in ``events`` so the tenant can replay it once the cause is gone,
    and said at ERROR (the alert). Never raises: Service Bus cannot dead-letter from a
    dead-letter queue, and a failure here would loop on it."""
    try:
        event: dict[str, Any] = orjson.loads(body)
        what = f"event {event['id']} {event['type']} tenant={event['tenant_id']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.error("unreadable event dead-lettered on the webhooks subscription (%s)", reason)
        return "unreadable"
    try:
        await _keep(deps, event)
    except Exception:
        log.exception("dead-lettered %s could not be kept for replay (%s)", what, reason)
        return "logged"
    log.error("webhooks fan-out gave up on %s, kept for replay (%s)", what, reason)
    return "kept"


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
    await jobs.enqueue(deps, jobs.WebhookJob.of(written, 1))
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
    await jobs.enqueue_first_attempts(deps, docs)
