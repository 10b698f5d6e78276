"""Publishing to the events topic: the one way every event goes out.

An event is published only if some subscription of the topic takes it (its rules are
asked once per tenant, type and webhook interest: a queue's topics and their rules do
not change while it lives), so an event nobody receives costs no queue operation — and on
the intake path, not even its payload. Event ids are deterministic: publishing one twice
inside the duplicate-detection window delivers it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from shared.domain.facts import ANALYTICS, TRANSITION_OF
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.ports import OutgoingMessage
from shared.services.deps import Deps
from shared.services.events.interest import event_properties, interest, wants

Properties = dict[str, str | int]
MAX_ROUTES = 10_000


def route(
    deps: Deps, tenant_id: str, event_type: str, webhooks: frozenset[str]
) -> Properties | None:
    """The event's topic properties if a subscription of the topic takes it, else None
    (``webhooks``: the patterns the tenant's webhooks take, ``interest``)."""
    return _routed(deps, tenant_id, event_type, webhooks)[0]


def guaranteed(deps: Deps, tenant_id: str, event_type: str, webhooks: frozenset[str]) -> bool:
    """Whether a subscription other than analytics takes the event. Those events go
    through the document's events outbox (marked, swept until published); an event
    only analytics takes is published after the write without a mark, so it costs no
    outbox clear, and the hourly reconciliation counts what a crash lost."""
    return _routed(deps, tenant_id, event_type, webhooks)[1]


def _routed(
    deps: Deps, tenant_id: str, event_type: str, webhooks: frozenset[str]
) -> tuple[Properties | None, bool]:
    key = (tenant_id, event_type, wants(webhooks, event_type))
    routes = deps.event_routes.setdefault(deps.queue, {})
    if key not in routes:
        if len(routes) >= MAX_ROUTES:
            routes.clear()
        properties = event_properties(tenant_id, event_type, webhooks)
        topic = deps.settings.OCM_EVENTS_TOPIC
        others = deps.queue.reaches_anyone(topic, properties)
        if event_type in TRANSITION_OF:
            properties[ANALYTICS] = "1"
        reached = others or deps.queue.reaches_anyone(topic, properties)
        routes[key] = (properties if reached else None, others)
    return routes[key]


def message(event: dict[str, Any], properties: Properties) -> OutgoingMessage:
    """The topic's message for one event ``{id, type, timestamp, tenant_id, data}``."""
    return OutgoingMessage(
        message_id=event["id"],
        body=orjson.dumps(event),
        subject=event["type"],
        application_properties=properties,
    )


async def send(deps: Deps, messages: Sequence[OutgoingMessage]) -> None:
    if messages:
        await deps.queue.send(deps.settings.OCM_EVENTS_TOPIC, list(messages))


def platform_event(
    tenant_id: str, event_type: str, data: dict[str, Any], at: datetime, event_id: str | None
) -> dict[str, Any]:
    """An event about the platform itself (not about a message), as webhooks carry it."""
    return {
        "id": event_id or new_id("evt", at),
        "type": event_type,
        "timestamp": to_utc_text(at),
        "tenant_id": tenant_id,
        "data": data,
    }


async def publish_platform_event(
    deps: Deps,
    tenant_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
) -> None:
    """An event about the platform itself (``webhook.endpoint.failing``, …) on the
    events topic, to reach the tenant's webhooks like any event; publishing it twice
    under one ``event_id`` delivers it once (duplicate detection)."""
    properties = route(deps, tenant_id, event_type, await interest(deps, tenant_id))
    if properties is not None:
        event = platform_event(tenant_id, event_type, data, deps.clock.now(), event_id)
        await send(deps, [message(event, properties)])
