"""Delivery receipts: a provider's later word on a message it was given — sent,
delivered, read, failed — applied as a status change that never goes backwards;
a repeated receipt changes nothing. A receipt that reports the receiver gone (a
bounce, a complaint, an unsubscribe) opts them out too."""

from __future__ import annotations

import logging
from typing import Any

from shared.containers import CHANNELS, MESSAGES
from shared.domain.message_document import MessageDocument
from shared.domain.timeline import change_status, error_info
from shared.services import concurrency
from shared.services.concurrency import Keep, Updated
from shared.services.deps import Deps
from shared.services.messaging import outbox, repository
from shared.services.receivers import opt_outs

log = logging.getLogger(__name__)

RECEIPT_STATUSES = frozenset({"sent", "delivered", "read", "failed"})
MAX_RECEIPT_IDS = 50


class ForeignReceipt(Exception):
    """The receipt names a message of another channel: it is not this provider's."""


class ReceiptTooEarly(Exception):
    """The receipt names a message whose send is not recorded yet; retry later."""


async def _find_message(deps: Deps, data: dict[str, Any]) -> MessageDocument | None:
    tenant_id = data["tenant_id"]
    if data.get("message_id"):
        doc = await repository.read(deps, tenant_id, data["message_id"])
        # A provider's event names our message id; it must be a message of its channel.
        if doc is not None and doc.get("channel_id") != data["channel_id"]:
            raise ForeignReceipt(data["message_id"])
        return doc
    return await repository.by_provider_id(
        deps, tenant_id, data["channel_id"], data["provider_message_id"]
    )


async def apply_receipt(deps: Deps, data: dict[str, Any]) -> str:
    """A delivery receipt: a status change, never backwards; duplicates ignored.

    A receipt with ``opt_out`` (a bounce, a complaint, an unsubscribe) also puts
    the message's receiver on the tenant's opt-out list for the channel's type."""
    status: str | None = data.get("status")
    found = await _find_message(deps, data)
    if data.get("opt_out"):
        await _opt_out_receiver(deps, data, found)
        if status is None:
            return "opted_out"
    if status not in RECEIPT_STATUSES:
        log.warning("receipt with unmapped status %r ignored", status)
        return "ignored"
    too_early = ReceiptTooEarly(data.get("provider_message_id") or data.get("message_id"))

    async def apply(doc: MessageDocument) -> str | Keep[str]:
        if doc["status"] in ("queued", "scheduled"):
            raise too_early
        seen = doc.setdefault("receipt_ids", [])
        receipt_id = data["event_id"].split("#")[0]
        if receipt_id in seen:
            return Keep("duplicate")
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
        return status

    if found is None:
        raise too_early
    tries = concurrency.for_queue("applying a receipt")
    # Found again as at first: failover may have moved the message to another channel.
    changed = await repository.received_only(deps, data["tenant_id"], apply)
    done: Updated[MessageDocument, str] | None = await concurrency.update(
        deps.store, MESSAGES, lambda: _find_message(deps, data), changed, tries, first=found
    )
    if done is None:
        raise too_early
    if done.doc is not None:
        await outbox.hand_off(deps, [done.doc])
    return done.outcome


async def _opt_out_receiver(deps: Deps, data: dict[str, Any], doc: MessageDocument | None) -> None:
    channel = await deps.store.read(CHANNELS, data["tenant_id"], data["channel_id"])
    if doc is None or channel is None or not doc.get("receiver"):
        log.warning("opt-out receipt for an unknown message ignored")
        return
    await opt_outs.opt_out_receiver(
        deps, doc, channel["type"], data["opt_out"], data.get("provider_status")
    )
