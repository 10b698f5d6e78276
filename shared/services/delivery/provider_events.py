"""What providers report later: delivery receipts and inbound messages.

Callbacks (verified first, by the API) and the sandbox put these on the
provider-events queue; one handler applies them. Applying the same event twice
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from shared.containers import CHANNELS, MESSAGES
from shared.domain import opt_outs as opt_out_rules
from shared.domain.errors import OcmError
from shared.domain.ids import new_id
from shared.domain.messages import InboundCreate, to_utc_text
from shared.domain.models import Document
from shared.domain.timeline import change_status, error_info, start
from shared.ports import Filter, OutgoingMessage, PreconditionFailed, ProviderEvent, Query
from shared.services.channels.channels import policy_of
from shared.services.deps import Deps
from shared.services.messaging import outbox
from shared.services.receivers import contacts, opt_outs

log = logging.getLogger(__name__)

RECEIPT_STATUSES = frozenset({"sent", "delivered", "read", "failed"})
MAX_RECEIPT_IDS = 50


class ForeignReceipt(Exception):
    """The receipt names a message of another channel: it is not this provider's."""


class ReceiptTooEarly(Exception):
    """The receipt names a message whose send is not recorded yet; retry later."""


def _event_id(event: ProviderEvent) -> str:
    p = event.payload
    return f"{event.kind}:{p['channel_id']}:{p['event_id']}"


async def enqueue(deps: Deps, events: Sequence[ProviderEvent]) -> None:
    messages = [
        OutgoingMessage(
            message_id=_event_id(e),
            body=orjson.dumps({"kind": e.kind, **e.payload}),
            scheduled_at=e.deliver_at,
            subject=e.kind,
        )
        for e in events
    ]
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


async def _find_message(deps: Deps, data: dict[str, Any]) -> Document | None:
    tenant_id = data["tenant_id"]
    if data.get("message_id"):
        doc = await deps.store.read(MESSAGES, tenant_id, data["message_id"])
        # A provider's event names our message id; it must be a message of its channel.
        if doc is not None and doc.get("channel_id") != data["channel_id"]:
            raise ForeignReceipt(data["message_id"])
        return doc
    page = await deps.store.query(
        MESSAGES,
        Query(
            scope=tenant_id,
            where=(
                Filter("channel_id", "eq", data["channel_id"]),
                Filter("provider_message_id", "eq", data["provider_message_id"]),
            ),
            limit=1,
        ),
    )
    return page.items[0] if page.items else None


async def apply_receipt(deps: Deps, data: dict[str, Any]) -> str:
    """A delivery receipt: a status change, never backwards; duplicates ignored.

    A receipt with ``opt_out`` (a bounce, a complaint, an unsubscribe) also puts
    the message's receiver on the tenant's opt-out list for the channel's type."""
    status: str | None = data.get("status")
    doc = await _find_message(deps, data)
    if data.get("opt_out"):
        await _opt_out_receiver(deps, data, doc)
        if status is None:
            return "opted_out"
    if status not in RECEIPT_STATUSES:
        log.warning("receipt with unmapped status %r ignored", status)
        return "ignored"
    for _ in range(5):
        if doc is None or doc["status"] in ("queued", "scheduled"):
            raise ReceiptTooEarly(data.get("provider_message_id") or data.get("message_id"))
        seen: list[str] = doc.setdefault("receipt_ids", [])
        receipt_id = data["event_id"].split("#")[0]
        if receipt_id in seen:
            return "duplicate"
        seen.append(receipt_id)
        del seen[:-MAX_RECEIPT_IDS]
        error = None
        if data.get("error_code"):
            error = error_info(
                data["error_code"],
                data.get("error_reason") or "",
                permanent=True,
                provider_status=data.get("provider_status"),
            )
        change_status(
            doc,
            status,
            deps.clock.now(),
            provider_message_id=data.get("provider_message_id"),
            error=error,
            extra={"source": "receipt"},
        )
        try:
            written = await deps.store.replace(MESSAGES, doc, etag=doc["_etag"])
        except PreconditionFailed:
            doc = await _find_message(deps, data)
            continue
        await outbox.hand_off(deps, [written])
        return status
    raise RuntimeError("receipt not applied after repeated concurrent updates")


async def _opt_out_receiver(deps: Deps, data: dict[str, Any], doc: Document | None) -> None:
    channel = await deps.store.read(CHANNELS, data["tenant_id"], data["channel_id"])
    if doc is None or channel is None or not doc.get("receiver"):
        log.warning("opt-out receipt for an unknown message ignored")
        return
    await opt_outs.add(
        deps,
        data["tenant_id"],
        channel["type"],
        doc["receiver"]["address"],
        data["opt_out"],
        message_id=doc["id"],
        provider_status=data.get("provider_status"),
    )


async def _keywords_and_window(deps: Deps, channel: Document, doc: Document) -> None:
    """STOP/START keywords on SMS and WhatsApp, and the WhatsApp window."""
    if channel["type"] not in ("sms", "whatsapp"):
        return
    tenant_id = channel["tenant_id"]
    sender = opt_out_rules.lookup_address(channel["type"], doc["sender"]["address"])
    if channel["type"] == "whatsapp":
        received = datetime.fromisoformat(doc["received_at"])
        await contacts.saw_inbound(deps, tenant_id, channel["id"], sender, received)
    text = doc["content"].get("text") if doc["content"].get("type") == "text" else None
    if not text:
        return
    policy = policy_of(channel)
    action = opt_out_rules.keyword_action(
        text,
        policy.stop_keywords or opt_out_rules.DEFAULT_STOP,
        policy.start_keywords or opt_out_rules.DEFAULT_START,
    )
    if action == "stop":
        try:
            await opt_outs.add(
                deps,
                tenant_id,
                channel["type"],
                sender,
                "keyword",
                keyword=text.strip().upper(),
                message_id=doc["id"],
            )
        except OcmError as exc:  # an address no send could reach: keep the message
            log.warning("STOP from an address that cannot be opted out: %s", exc.detail)
    elif action == "start":
        await opt_outs.remove(deps, tenant_id, channel["type"], sender)


async def receive_inbound(deps: Deps, data: dict[str, Any]) -> str:
    """An inbound message becomes a ``direction: inbound`` message, once."""
    tenant_id, channel_id = data["tenant_id"], data["channel_id"]
    channel = await deps.store.read(CHANNELS, tenant_id, channel_id)
    if channel is None or channel["status"] == "deleted":
        log.warning("inbound message for a missing channel dropped")
        return "dropped"
    existing = await deps.store.query(
        MESSAGES,
        Query(
            scope=tenant_id,
            where=(
                Filter("channel_id", "eq", channel_id),
                Filter("provider_message_id", "eq", data["provider_message_id"]),
            ),
            limit=1,
        ),
    )
    if existing.items:
        return "duplicate"
    now = deps.clock.now()
    stamp = to_utc_text(now)
    doc: Document = {
        "id": new_id("msg", now),
        "tenant_id": tenant_id,
        "direction": "inbound",
        "channel": channel["name"],
        "channel_id": channel_id,
        "provider": channel["provider"],
        "sender": data["sender"],
        "receiver": data.get("receiver") or channel.get("default_sender"),
        "content": data["content"],
        "subject": data.get("subject"),
        "context": {},
        "tags": [],
        "provider_message_id": data["provider_message_id"],
        "received_at": data.get("received_at") or stamp,
        "created_at": stamp,
        "updated_at": stamp,
    }
    start(doc, "received", now, provider_message_id=data["provider_message_id"])
    # Opt-outs first: a crash after them is mended by the redelivery, which finds no
    # message yet and does both (each idempotent); a crash after the create would not.
    await _keywords_and_window(deps, channel, doc)
    written = await deps.store.create(MESSAGES, doc)
    await outbox.hand_off(deps, [written])
    return "received"


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
