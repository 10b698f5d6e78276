"""Fallback on outcome: a message's ``fallback`` is sent when it fails for good,
expires, or gets no delivery receipt within ``options.fallback_after`` seconds.

The status that calls for it arms a fallback job in the same write (see
``shared.domain.timeline``), so a crash loses nothing: the job is in the outbox
until handed to the queue. The job creates the fallback under an id derived
from the primary's, so running it twice creates one message; the primary
records ``message.fallback`` with the fallback's id. A fallback that can no
longer be accepted (its receiver opted out meanwhile, its channel is gone, the
quota is spent) is recorded on the primary as the fallback's error.
"""

from __future__ import annotations

import logging
from typing import Literal

from shared.domain.errors import OcmError
from shared.domain.ids import derived_id
from shared.domain.jobs import fallback_on_timer
from shared.domain.message_document import MessageDocument
from shared.domain.timeline import add_event, error_info
from shared.ports import Conflict
from shared.services import concurrency
from shared.services.concurrency import Keep, Updated
from shared.services.deps import Deps
from shared.services.messaging import compose, intake, outbox, repository

log = logging.getLogger(__name__)

Outcome = Literal["fallback", "dropped", "missing", "refused"]


def _due(doc: MessageDocument, job: str) -> bool:
    """Whether the primary still calls for its fallback."""
    if doc.get("fallback_id") or doc.get("fallback_error") or not doc.get("fallback"):
        return False
    if doc["status"] in ("failed", "expired"):
        return True
    return fallback_on_timer(job) and doc["status"] == "sent"


async def fire(deps: Deps, tenant_id: str, message_id: str, job: str) -> Outcome:
    async def record(doc: MessageDocument) -> Outcome | Keep[Outcome]:
        if not _due(doc, job):
            return Keep("dropped")
        now = deps.clock.now()
        child_id = derived_id("msg", doc["id"], "fallback")
        try:
            await _create(deps, doc, child_id)
        except OcmError as exc:
            error = doc["fallback_error"] = error_info(exc.code, exc.detail, permanent=True)
            add_event(doc, "message.fallback", now, error=error)
            outcome: Outcome = "refused"
        else:
            doc["fallback_id"] = child_id
            add_event(doc, "message.fallback", now, fallback_id=child_id)
            outcome = "fallback"
        doc["outbox_at"] = None
        return outcome

    tries = concurrency.for_queue("recording the fallback")
    done: Updated[MessageDocument, Outcome] | None = await repository.update(
        deps, tenant_id, message_id, record, tries
    )
    if done is None:
        return "missing"
    if done.doc is not None:
        await outbox.hand_off(deps, [done.doc])
    return done.outcome


async def _create(deps: Deps, primary: MessageDocument, child_id: str) -> None:
    """The fallback message, accepted as a client's would be (idempotent by id)."""
    if await repository.read(deps, primary["tenant_id"], child_id) is not None:
        return
    raw = {**primary["fallback"], "context": primary.get("context") or {}}
    msg = intake.parse_message(raw)
    tenant_id = primary["tenant_id"]
    doc = await compose.make_message(
        deps,
        tenant_id,
        raw,
        msg,
        compose.ChannelCache(deps, tenant_id),
        deps.clock.now(),
        traceparent=primary.get("traceparent"),
        msg_id=child_id,
    )
    doc["parent_id"] = primary["id"]
    doc["tags"] = doc.get("tags") or primary.get("tags") or []
    doc["fallback_step"] = primary.get("fallback_step", 0) + 1
    if "app_id" in primary:
        doc["app_id"] = primary["app_id"]
    await intake.reserve(deps, tenant_id, 1)
    try:
        await repository.create(deps, doc)
    except Conflict:
        return
    await outbox.hand_off(deps, [doc], clear=False, best_effort=True)
