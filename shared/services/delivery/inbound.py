"""Inbound messages: what a receiver sends to a channel becomes a ``direction:
inbound`` message, once; on SMS and WhatsApp its STOP/START keywords opt the sender
out or back in, and on WhatsApp it opens the 24-hour window."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.containers import CHANNELS
from shared.domain import opt_outs as opt_out_rules
from shared.domain.errors import OcmError
from shared.domain.ids import new_id
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.timeline import start
from shared.services.channels.channels import policy_of
from shared.services.deps import Deps
from shared.services.messaging import outbox, repository
from shared.services.receivers import contacts, opt_outs

log = logging.getLogger(__name__)


async def _keywords_and_window(deps: Deps, channel: Document, doc: MessageDocument) -> None:
    """STOP/START keywords on SMS and WhatsApp, and the WhatsApp window."""
    party = doc.get("sender")
    if channel["type"] not in ("sms", "whatsapp") or party is None:
        return
    tenant_id = channel["tenant_id"]
    sender = opt_out_rules.lookup_address(channel["type"], party["address"])
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
    provider_id = data["provider_message_id"]
    if await repository.by_provider_id(deps, tenant_id, channel_id, provider_id) is not None:
        return "duplicate"
    now = deps.clock.now()
    stamp = to_utc_text(now)
    doc: MessageDocument = {
        "id": new_id("msg", now),
        "tenant_id": tenant_id,
        "direction": "inbound",
        "status": "received",
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
    written = await repository.create(deps, doc)
    await outbox.hand_off(deps, [written])
    return "received"
