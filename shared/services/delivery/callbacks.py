"""Provider callbacks: verify first, then parse, then queue what they report.

``/api/v1/callbacks/{provider}/{channel_id}`` names no tenant: the channel id,
found through the Directory, does. The provider's own scheme verifies the
request before anything of it is parsed or stored; what it reports goes to the
provider-events queue under ids derived from the provider's own event ids, so a
repeated callback changes nothing (queue duplicate detection, then the
handlers' own dedupe).
"""

from __future__ import annotations

import logging

from shared.containers import CHANNELS
from shared.domain.errors import CallbackInvalid, NotFoundError
from shared.domain.inbound import checked_inbound
from shared.ports import CallbackReply, CallbackRequest, ProviderEvent
from shared.services.channels.channels import load_credentials
from shared.services.delivery import provider_events
from shared.services.deps import Deps
from shared.services.identity import directory

log = logging.getLogger(__name__)


async def receive(
    deps: Deps, provider: str, channel_id: str, request: CallbackRequest
) -> CallbackReply:
    handler = deps.callbacks.get(provider)
    entry = await directory.find_channel(deps, channel_id) if handler else None
    channel = await deps.store.read(CHANNELS, entry["tenant_id"], channel_id) if entry else None
    if (
        handler is None
        or channel is None
        or channel["status"] == "deleted"
        or channel["provider"] != provider
    ):
        raise NotFoundError("No such callback", code="CALLBACK_NOT_FOUND")
    credentials = await load_credentials(deps, channel)
    handler.verify(request, channel, credentials)
    try:
        reply = handler.parse(request, channel, credentials)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # Verified, yet not what the provider documents: the sender's mistake, a 400
        # (parsers raise CallbackInvalid themselves where they look; this is the net).
        log.warning("callback %s for channel %s not understood: %r", provider, channel_id, exc)
        raise CallbackInvalid("The callback is not in the provider's format") from None
    owner = {"tenant_id": channel["tenant_id"], "channel_id": channel_id}
    events = [
        ProviderEvent(
            kind=e.kind,
            payload={**(checked_inbound(e.payload) if e.kind == "inbound" else e.payload), **owner},
            deliver_at=e.deliver_at,
        )
        for e in reply.events
    ]
    if events:
        await provider_events.enqueue(deps, events)
    log.info("callback %s for channel %s: %d event(s)", provider, channel_id, len(events))
    return reply
