"""The provider-events queue: delivery receipts and inbound messages, put there by
verified callbacks (``callbacks``) and by the sandbox, applied by one handler
(``receipts``, ``inbound``). Applying the same event twice changes nothing: its
queue message id is derived from the provider's own event id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from shared.domain.ids import new_id
from shared.domain.messages import InboundCreate, to_utc_text
from shared.domain.models import Document
from shared.ports import OutgoingMessage, ProviderEvent
from shared.services.delivery.inbound import receive_inbound
from shared.services.delivery.receipts import ForeignReceipt, ReceiptTooEarly, apply_receipt
from shared.services.deps import Deps

log = logging.getLogger(__name__)


def _event_id(event: ProviderEvent) -> str:
    p = event.payload
    return f"{event.kind}:{p['channel_id']}:{p['event_id']}"


QUEUED_INBOUND_BYTES = 64 * 1024
"""An inbound message larger than this (an e-mail with a large HTML part: up to
256 KiB are accepted) is applied where it arrives rather than queued: Service Bus
takes 256 KB a message and bills each started 64 KB of it as one operation."""


async def enqueue(deps: Deps, events: Sequence[ProviderEvent]) -> None:
    """Queue the events for ``handle``; a large inbound message is handled here."""
    messages = []
    for e in events:
        body = orjson.dumps({"kind": e.kind, **e.payload})
        if e.kind == "inbound" and e.deliver_at is None and len(body) > QUEUED_INBOUND_BYTES:
            await receive_inbound(deps, dict(e.payload))
            continue
        messages.append(
            OutgoingMessage(
                message_id=_event_id(e), body=body, scheduled_at=e.deliver_at, subject=e.kind
            )
        )
    if messages:
        await deps.queue.send(deps.settings.OCM_PROVIDER_EVENTS_QUEUE, messages)


EARLY_RETRIES = 8


async def handle(deps: Deps, body: bytes) -> str:
    data: dict[str, Any] = orjson.loads(body)
    kind = data.get("kind")
    if kind == "receipt":
        try:
            return await apply_receipt(deps, data)
        except ReceiptTooEarly:
            return await _retry_later(deps, data)
        except ForeignReceipt:
            log.warning("receipt for a message of another channel ignored")
            return "ignored"
    if kind == "inbound":
        return await receive_inbound(deps, data)
    log.error("provider event of unknown kind %r dropped", kind)
    return "dropped"


async def _retry_later(deps: Deps, data: dict[str, Any]) -> str:
    """A receipt can overtake the record of its own send: try again shortly."""
    retries = int(data.get("early_retries", 0))
    if retries >= EARLY_RETRIES:
        # Providers report messages sent outside OCM on the same account too.
        log.warning("receipt for an unknown message dropped (channel %s)", data.get("channel_id"))
        return "unknown_message"
    delay = timedelta(seconds=0.5 * 2**retries)
    payload = {k: v for k, v in data.items() if k != "kind"}
    payload["early_retries"] = retries + 1
    payload["event_id"] = f"{data['event_id'].split('#')[0]}#{retries + 1}"
    await enqueue(
        deps, [ProviderEvent(kind="receipt", payload=payload, deliver_at=deps.clock.now() + delay)]
    )
    return "retry_later"


async def simulate_inbound(deps: Deps, channel: Document, inbound: InboundCreate) -> str:
    """Inject an inbound message as the sandbox provider would report it."""
    provider_id = inbound.provider_message_id or new_id("sbx")
    payload: dict[str, Any] = {
        "tenant_id": channel["tenant_id"],
        "channel_id": channel["id"],
        "event_id": provider_id,
        "provider_message_id": provider_id,
        "sender": inbound.sender.model_dump(exclude_none=True),
        "receiver": inbound.receiver.model_dump(exclude_none=True) if inbound.receiver else None,
        "content": inbound.content.model_dump(exclude_defaults=True),
        "subject": inbound.subject,
        "received_at": to_utc_text(deps.clock.now()),
    }
    await enqueue(deps, [ProviderEvent(kind="inbound", payload=payload)])
    return provider_id
