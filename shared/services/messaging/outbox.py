"""The outboxes: dispatch jobs and events are written on the message document
first, then published; sweeps re-publish whatever a crash left behind.

Both publications use deterministic queue message ids, so a re-publication
inside the duplicate-detection window is dropped by the queue, and dispatch
ignores stale jobs after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from shared import telemetry
from shared.containers import MESSAGES
from shared.domain.facts import ANALYTICS, TRANSITION_OF, event_fields
from shared.domain.jobs import DispatchJob, is_fallback
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.status import PENDING
from shared.domain.timeline import event_payload
from shared.ports import SYSTEM, Filter, MessageTooLarge, OutgoingMessage, Query
from shared.services.deps import Deps
from shared.services.events import facts_out, publish
from shared.services.events.interest import interest
from shared.services.messaging import repository

log = logging.getLogger(__name__)

SWEEP_PAGE = 500


def job_message(doc: MessageDocument, now: datetime) -> OutgoingMessage:
    """The queue message of the dispatch job the document expects next."""
    slot = doc["dispatch"]
    due = datetime.fromisoformat(slot["due_at"])
    job = DispatchJob(doc["tenant_id"], doc["id"], slot["job"], doc.get("traceparent"))
    return OutgoingMessage(
        message_id=job.job,
        body=job.encode(),
        scheduled_at=due if due > now else None,
        subject="dispatch",
    )


async def enqueue_jobs(deps: Deps, docs: Sequence[MessageDocument]) -> None:
    if not docs:
        return
    now = deps.clock.now()
    queue = deps.settings.OCM_OUTBOUND_QUEUE
    message_id = docs[0]["id"] if len(docs) == 1 else None
    with telemetry.span("enqueue", queue=queue, jobs=len(docs), message_id=message_id):
        await deps.queue.send(queue, [job_message(d, now) for d in docs])


def mark_published(doc: MessageDocument) -> None:
    """Dispatch holds the document's current job: its pending events went out before
    the job was handed off (see ``hand_off``), so the claim may clear them."""
    doc["pending_events"] = []
    doc["events_at"] = None


async def _publish(deps: Deps, docs: Sequence[MessageDocument]) -> None:
    """Pending events go out one topic message each; fresh ones (analytics only) are
    gathered into few (``facts_out``)."""
    tenants = {d["tenant_id"] for d in docs}
    webhooks = {t: await interest(deps, t) for t in tenants}
    events = []
    gathered = []
    for doc in docs:
        pending = set(doc.get("pending_events") or ())
        fresh = set(doc.get("fresh_events") or ())
        if not pending and not fresh:
            continue
        tenant_id = doc["tenant_id"]
        fields: dict[str, Any] | None = None
        for entry in doc.get("events", ()):
            if entry.get("id") not in pending and entry.get("id") not in fresh:
                continue
            # Built only for an event someone receives: the intake path's hot loop.
            properties = publish.route(deps, tenant_id, entry["type"], webhooks[tenant_id])
            if properties is None:
                continue
            if entry["type"] in TRANSITION_OF:
                fields = fields or event_fields(doc)
            if entry["id"] not in pending:  # analytics' alone: gathered, in its short form
                gathered.append(facts_out.record(doc, entry, fields or {}))
                continue
            event = event_payload(doc, entry)
            if fields is not None and entry["type"] in TRANSITION_OF:
                event[ANALYTICS] = fields
            events.append(publish.message(event, properties))
    await publish.send(deps, events)
    await facts_out.add(deps, gathered)


def _has_job(doc: MessageDocument) -> bool:
    if doc.get("outbox_at") is None:
        return False
    slot = doc.get("dispatch")
    return doc["status"] in PENDING or (slot is not None and is_fallback(slot["job"]))


async def hand_off(
    deps: Deps, docs: Sequence[MessageDocument], *, clear: bool = True, best_effort: bool = False
) -> None:
    """After documents were written: enqueue their dispatch jobs and publish their
    pending events, then clear both outboxes where nobody wrote since (etag).

    A newer writer of a document hands off what it found pending itself. With
    ``clear=False`` (intake) the next write clears them: dispatch's claim, or
    the sweep after the grace period (its re-publication is then a duplicate
    the queue drops) — which spares a second write of every new message.

    Events go out before jobs, so a job in the queue proves that the events
    pending when it was handed off are published (dispatch relies on it).

    ``best_effort``: the documents are written, so a failure here is the sweep's
    to mend, not the caller's (a client retrying would create a second message).
    """
    try:
        await _publish(deps, docs)
        await enqueue_jobs(deps, [d for d in docs if _has_job(d)])
    except Exception:
        if not best_effort:
            raise
        log.exception("hand-off of %d documents failed; the outbox sweep will retry", len(docs))
        return
    if not clear:
        return
    changes: dict[str, Any] = {"outbox_at": None, "pending_events": [], "events_at": None}
    items = [
        (d["tenant_id"], d["id"], changes, d.get("_etag"))
        for d in docs
        if d.get("outbox_at") is not None or d.get("pending_events")
    ]
    if items:
        await deps.store.patch_many(MESSAGES, items)


async def _overdue(deps: Deps, field: str, cutoff: str) -> list[MessageDocument]:
    """Messages whose ``field`` (an outbox mark) is set and older than ``cutoff``."""
    # "is set" is spelled out so stores can use their partial (set-only) index.
    where = (Filter(field, "ne", None), Filter(field, "lte", cutoff))
    return await repository.find(
        deps, Query(scope=SYSTEM, where=where, order_by=field, limit=SWEEP_PAGE)
    )


SWEEP_PAGES = 20
"""Pages per sweep at most (10 000 documents per field): a large backlog left by an
outage drains over a few sweeps without one sweep running unbounded."""


async def _isolated(deps: Deps, docs: Sequence[MessageDocument]) -> set[str]:
    """A page the queue refused part of, handed off one document at a time: the ids
    of those it refuses. Their marks move to now, behind every other overdue
    document, so they cannot hold the head of the sweep's oldest-first pages (the
    API's limits make this unreachable for new messages; an operator is told)."""
    refused: set[str] = set()
    for doc in docs:
        try:
            await hand_off(deps, [doc])
        except MessageTooLarge as exc:
            refused.add(doc["id"])
            log.error(
                "outbox: message %s of tenant %s cannot be published (%s); retried "
                "after the grace period",
                doc["id"],
                doc["tenant_id"],
                exc,
            )
            now = to_utc_text(deps.clock.now())
            later = {f: now for f in ("outbox_at", "events_at") if doc.get(f) is not None}
            await deps.store.patch_many(
                MESSAGES, [(doc["tenant_id"], doc["id"], later, doc.get("_etag"))]
            )
    return refused


async def sweep(deps: Deps) -> dict[str, int]:
    """Hand off again what a crash left between a write and its hand-off (system
    scope: all tenants): jobs due, and events pending, for longer than the grace.

    Once is enough: a hand-off that returned is durable in the queue, and one
    repeated inside the duplicate-detection window is dropped there. A document the
    queue refuses is set aside (``_isolated``) and the sweep goes on.
    """
    cutoff = to_utc_text(
        deps.clock.now() - timedelta(seconds=deps.settings.OCM_OUTBOX_GRACE_SECONDS)
    )
    counts = {"jobs": 0, "event_documents": 0, "refused": 0}
    for field in ("outbox_at", "events_at"):
        for _ in range(SWEEP_PAGES):
            docs = await _overdue(deps, field, cutoff)
            full = len(docs) == SWEEP_PAGE
            try:
                await hand_off(deps, docs)
            except MessageTooLarge:
                refused = await _isolated(deps, docs)
                counts["refused"] += len(refused)
                docs = [d for d in docs if d["id"] not in refused]
            if field == "outbox_at":  # a job handed off early with its events is not due
                counts["jobs"] += sum(1 for d in docs if _has_job(d))
            counts["event_documents"] += sum(1 for d in docs if d.get("pending_events"))
            if not full:
                break
    if any(counts.values()):
        log.warning("outbox sweep re-published %s", counts)
    return counts
