"""The receivers a channel has heard from: WhatsApp's 24-hour customer-service window.

Meta (and Twilio for WhatsApp) take free-form messages only within 24 hours of the
receiver's last message to the business number; outside it only approved
templates. OCM keeps, per channel and sender, when it last received a message,
and judges the window from that (a point read by a derived id).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.containers import CONTACTS
from shared.domain.ids import hashed_id
from shared.domain.messages import to_utc_text
from shared.services.deps import Deps

WINDOW = timedelta(hours=24)


def contact_id(tenant_id: str, channel_id: str, address: str) -> str:
    return hashed_id("cnt", tenant_id, channel_id, address)


async def saw_inbound(
    deps: Deps, tenant_id: str, channel_id: str, address: str, at: datetime
) -> None:
    """Record an inbound message's time; an older one (events arrive out of order)
    does not move the window back."""
    doc_id, last = contact_id(tenant_id, channel_id, address), to_utc_text(at)
    known = await deps.store.read(CONTACTS, tenant_id, doc_id)
    if known is not None and known["last_inbound_at"] >= last:
        return
    await deps.store.upsert(
        CONTACTS,
        {
            "id": doc_id,
            "tenant_id": tenant_id,
            "channel_id": channel_id,
            "address": address,
            "last_inbound_at": last,
        },
    )


async def in_window(
    deps: Deps, tenant_id: str, channel_id: str, address: str, now: datetime
) -> bool:
    """Whether the receiver wrote to this channel within the last 24 hours."""
    doc = await deps.store.read(CONTACTS, tenant_id, contact_id(tenant_id, channel_id, address))
    if doc is None:
        return False
    return now - datetime.fromisoformat(doc["last_inbound_at"]) < WINDOW
