"""Drive a platform's queues in process: what the dispatch and provider-events
triggers do, until nothing is due (scheduled messages wait for their time)."""

from __future__ import annotations

from shared.domain.jobs import DispatchJob
from shared.services.delivery import dispatch, provider_events
from shared.services.deps import Deps


async def pump(deps: Deps, *, rounds: int = 50) -> int:
    """Handle every due outbound job and provider event; returns how many were handled."""
    handled = 0
    settings = deps.settings
    for _ in range(rounds):
        busy = False
        for entity in (settings.OCM_OUTBOUND_QUEUE, settings.OCM_PROVIDER_EVENTS_QUEUE):
            for received in await deps.queue.receive(entity, max_messages=32):
                if entity == settings.OCM_OUTBOUND_QUEUE:
                    await dispatch.dispatch(deps, DispatchJob.decode(received.body))
                else:
                    await provider_events.handle(deps, received.body)
                await deps.queue.complete(entity, received)
                handled += 1
                busy = True
        if not busy:
            break
    return handled
