"""What the queue gave up on: nothing may stay queued forever."""

from __future__ import annotations

import logging

import orjson

from shared.domain.jobs import DispatchJob
from shared.domain.message_document import MessageDocument
from shared.domain.timeline import change_status, error_info
from shared.services import concurrency
from shared.services.concurrency import Keep
from shared.services.deps import Deps
from shared.services.messaging import outbox, repository

log = logging.getLogger(__name__)


async def fail_dead_lettered(deps: Deps, body: bytes, reason: str | None) -> str:
    """Mark the message of a dead-lettered dispatch job ``failed`` (DEAD_LETTERED)."""
    job = DispatchJob.decode(body)
    if job is None:
        log.error("unreadable dead-lettered dispatch job dropped")
        return "unreadable"
    if job.is_fallback:
        # A fallback job the queue gave up on: the primary's own status stands.
        log.error("fallback job of %s dead-lettered (%s)", job.message_id, reason)
        return "settled"

    async def fail(doc: MessageDocument) -> str | Keep[str]:
        if doc["status"] not in ("scheduled", "queued", "sending"):
            return Keep("settled")
        error = error_info(
            "DEAD_LETTERED",
            f"The queue gave up on this message ({reason or 'no reason given'})",
            permanent=True,
        )
        doc["claim"] = None
        change_status(doc, "failed", deps.clock.now(), attempt=doc.get("attempts"), error=error)
        return "failed"

    tries = concurrency.for_queue(f"failing the dead-lettered {job.message_id}")
    done = await repository.update(deps, job.tenant_id, job.message_id, fail, tries)
    if done is None:
        return "missing"
    if done.doc is not None:
        await outbox.hand_off(deps, [done.doc])
    return done.outcome


async def log_dead_provider_event(body: bytes, reason: str | None) -> None:
    """A receipt or inbound message that could not be applied: an operator must look."""
    try:
        data = orjson.loads(body)
        what = f"{data.get('kind')} for channel {data.get('channel_id')}"
    except orjson.JSONDecodeError:
        what = "unreadable provider event"
    log.error("dead-lettered provider event: %s (%s)", what, reason)
