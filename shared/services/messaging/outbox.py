"""The outboxes: dispatch jobs and events are written on the message document
first, then published; sweeps re-publish whatever a crash left behind.

Both publications use deterministic queue message ids, so a re-publication
inside the duplicate-detection window is dropped by the queue, and dispatch
ignores stale jobs after it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from shared import telemetry
from shared.containers import MESSAGES
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.status import PENDING
from shared.domain.timeline import FALLBACK_JOB, event_payload
from shared.ports import SYSTEM, Filter, OutgoingMessage, Query
from shared.services.deps import Deps
from shared.services.webhooks import fanout as webhook_fanout

log = logging.getLogger(__name__)

SWEEP_PAGE = 500


def job_id(message_id: str, attempt: int, suffix: str = "") -> str:
    """The queue message id of one dispatch job: ``{message_id}:{attempt}[:suffix]``."""
    return f"{message_id}:{attempt}{':' + suffix if suffix else ''}"


_REACHES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, bool], bool]] = (
    weakref.WeakKeyDictionary()
)
"""Per queue: whether an event reaches a subscriber, by tenant, type and webhook
interest. A queue's topics and their rules do not change while it lives, and intake
asks this for every new message (a batch, a thousand times the same)."""


def _reaches(deps: Deps, tenant_id: str, event_type: str, webhooks: frozenset[str]) -> bool:
    known = _REACHES.setdefault(deps.queue, {})
    key = (tenant_id, event_type, webhook_fanout.wants(webhooks, event_type))
    found = known.get(key)
    if found is None:
        if len(known) > 10_000:
            known.clear()
        properties = webhook_fanout.event_properties(tenant_id, event_type, webhooks)
        found = known[key] = deps.queue.reaches_anyone(deps.settings.OCM_EVENTS_TOPIC, properties)
    return found


def forget_unreceived_events(
    deps: Deps, doc: Document, webhooks: frozenset[str] = frozenset()
) -> None:
    """Drop the pending events of a new document that no subscriber would receive
    (an events topic with only a failures log, say), so it is written without an
    events outbox mark — one index entry and one later clear fewer per message."""
    pending = doc.get("pending_events")
    if not pending:
        return
    types = {e["id"]: e["type"] for e in doc.get("events", ())}
    kept = [eid for eid in pending if _reaches(deps, doc["tenant_id"], types[eid], webhooks)]
    if len(kept) < len(pending):
        doc["pending_events"] = kept
        if not kept:
            doc["events_at"] = None


def job_message(doc: Document, now: datetime) -> OutgoingMessage:
    job = doc["dispatch"]
    due = datetime.fromisoformat(job["due_at"])
    body = {"tenant_id": doc["tenant_id"], "message_id": doc["id"], "job": job["job"]}
    if "traceparent" in doc:
        body["traceparent"] = doc["traceparent"]
    return OutgoingMessage(
        message_id=job["job"],
        body=orjson.dumps(body),
        scheduled_at=due if due > now else None,
        subject="dispatch",
    )


async def enqueue_jobs(deps: Deps, docs: Sequence[Document]) -> None:
    if not docs:
        return
    now = deps.clock.now()
    queue = deps.settings.OCM_OUTBOUND_QUEUE
    message_id = docs[0]["id"] if len(docs) == 1 else None
    with telemetry.span("enqueue", queue=queue, jobs=len(docs), message_id=message_id):
        await deps.queue.send(queue, [job_message(d, now) for d in docs])


def mark_published(doc: Document) -> None:
    """Dispatch holds the document's current job: its pending events went out before
    the job was handed off (see ``hand_off``), so the claim may clear them."""
    doc["pending_events"] = []
    doc["events_at"] = None


async def _publish(deps: Deps, docs: Sequence[Document]) -> None:
    topic = deps.settings.OCM_EVENTS_TOPIC
    reaches: dict[tuple[str, str], dict[str, str | int] | None] = {}
    webhooks = {t: await webhook_fanout.interest(deps, t) for t in {d["tenant_id"] for d in docs}}

    def wanted(tenant_id: str, event_type: str) -> dict[str, str | int] | None:
        """The event's properties if a subscriber takes it (asked once per tenant and
        type), else None."""
        key = (tenant_id, event_type)
        if key not in reaches:
            properties = webhook_fanout.event_properties(tenant_id, event_type, webhooks[tenant_id])
            reaches[key] = properties if deps.queue.reaches_anyone(topic, properties) else None
        return reaches[key]

    events = [m for d in docs for m in _event_messages(d, wanted)]
    if events:
        await deps.queue.send(topic, events)


def _event_messages(
    doc: Document, wanted: Callable[[str, str], dict[str, str | int] | None]
) -> list[OutgoingMessage]:
    """The document's pending events that someone receives (the rest would be
    dropped by the topic: building them is wasted work on the intake path)."""
    pending = set(doc.get("pending_events") or ())
    out = []
    for entry in doc.get("events", ()):
        if entry.get("id") not in pending:
            continue
        properties = wanted(doc["tenant_id"], entry["type"])
        if properties is not None:
            out.append(
                OutgoingMessage(
                    message_id=entry["id"],
                    body=orjson.dumps(event_payload(doc, entry)),
                    subject=entry["type"],
                    application_properties=properties,
                )
            )
    return out


def _has_job(doc: Document) -> bool:
    if doc.get("outbox_at") is None:
        return False
    return doc["status"] in PENDING or FALLBACK_JOB in (doc.get("dispatch") or {}).get("job", "")


async def hand_off(
    deps: Deps, docs: Sequence[Document], *, clear: bool = True, best_effort: bool = False
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


async def _overdue(deps: Deps, field: str, cutoff: str) -> list[Document]:
    """Messages whose ``field`` (an outbox mark) is set and older than ``cutoff``."""
    # "is set" is spelled out so stores can use their partial (set-only) index.
    where = (Filter(field, "ne", None), Filter(field, "lte", cutoff))
    query = Query(scope=SYSTEM, where=where, order_by=field, limit=SWEEP_PAGE)
    return (await deps.store.query(MESSAGES, query)).items


SWEEP_PAGES = 20
"""Pages per sweep at most (10 000 documents per field): a large backlog left by an
outage drains over a few sweeps without one sweep running unbounded."""


async def sweep(deps: Deps) -> dict[str, int]:
    """Hand off again what a crash left between a write and its hand-off (system
    scope: all tenants): jobs due, and events pending, for longer than the grace.

    Once is enough: a hand-off that returned is durable in the queue, and one
    repeated inside the duplicate-detection window is dropped there.
    """
    cutoff = to_utc_text(
        deps.clock.now() - timedelta(seconds=deps.settings.OCM_OUTBOX_GRACE_SECONDS)
    )
    counts = {"jobs": 0, "event_documents": 0}
    for field in ("outbox_at", "events_at"):
        for _ in range(SWEEP_PAGES):
            docs = await _overdue(deps, field, cutoff)
            await hand_off(deps, docs)
            if field == "outbox_at":  # a job handed off early with its events is not due
                counts["jobs"] += sum(1 for d in docs if _has_job(d))
            counts["event_documents"] += sum(1 for d in docs if d.get("pending_events"))
            if len(docs) < SWEEP_PAGE:
                break
    if any(counts.values()):
        log.warning("outbox sweep re-published %s", counts)
    return counts
