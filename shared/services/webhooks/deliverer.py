"""Webhook delivery: one signed POST per job, recorded, retried on the subscription's
schedule; the endpoint's health (``shared.domain.webhook_health``: a warning, then
disabling) follows the outcomes.

A job (``jobs.WebhookJob``) names the attempt its delivery document expects next; any
other job is dropped. The attempt is written to the document before anything follows
from it (the subscription's health, the retry's job). A redelivered job whose attempt
is recorded already does not POST again: it re-runs only those follow-ups, which are
idempotent (the retry's job has the same message id, which the queue drops).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Literal

from shared.containers import WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain import webhook_health
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhooks import DEFAULT_SCHEDULE, next_delay
from shared.ports import PreconditionFailed
from shared.services import concurrency
from shared.services.concurrency import Keep, Updated
from shared.services.deps import Deps
from shared.services.events import interest, publish
from shared.services.webhooks import attempt as webhook_attempt
from shared.services.webhooks import jobs
from shared.services.webhooks.attempt import Answer
from shared.services.webhooks.jobs import WebhookJob

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "retrying", "failed", "dropped", "missing", "unreadable"]
ATTEMPTS_KEPT = 50


async def _job_and_delivery(
    deps: Deps, body: bytes, what: str
) -> tuple[WebhookJob, Document] | Outcome:
    """The job a queue message carries and the delivery it names, or why not."""
    job = WebhookJob.decode(body)
    if job is None:
        log.error("unreadable %s dropped", what)
        return "unreadable"
    doc = await _read(deps, job.tenant_id, job.delivery_id)
    return "missing" if doc is None else (job, doc)


async def _read(deps: Deps, tenant_id: str, delivery_id: str) -> Document | None:
    return await deps.store.read(WEBHOOK_DELIVERIES, tenant_id, delivery_id)


async def deliver(deps: Deps, body: bytes) -> Outcome:
    """Handle one delivery job; safe to call any number of times for the same job."""
    found = await _job_and_delivery(deps, body, "webhook delivery job")
    if isinstance(found, str):
        return found
    job, doc = found
    done = int(doc.get("attempt_count") or 0)
    if job.attempt == done and done > 0:
        # Recorded before a crash: finish what it started.
        await _follow_up(deps, doc, None, redelivered=True)
        return "dropped"
    if doc["status"] != "pending" or job.attempt != done + 1:
        return "dropped"
    subscription = await deps.store.read(WEBHOOKS, job.tenant_id, doc["webhook_id"])
    if subscription is None or not subscription.get("enabled", True):
        await _settle(deps, doc, "WEBHOOK_DISABLED")
        return "dropped"
    answer = await webhook_attempt.attempt(deps, doc, subscription)
    written = await _record(deps, doc, job, answer, subscription)
    if written is None:
        return "dropped"
    return await _follow_up(deps, written, subscription)


async def fail_dead_lettered(deps: Deps, body: bytes, reason: str | None) -> str:
    """Fail the delivery of a job the queue gave up on, so none stays pending forever."""
    found = await _job_and_delivery(deps, body, "dead-lettered webhook delivery job")
    if isinstance(found, str):
        return found
    job, doc = found
    if doc["status"] != "pending" or job.attempt < int(doc.get("attempt_count") or 0):
        return "settled"
    log.error("webhook delivery %s dead-lettered (%s)", job.delivery_id, reason)
    return "failed" if await _settle(deps, doc, "DEAD_LETTERED") else "settled"


async def _record(
    deps: Deps, doc: Document, job: WebhookJob, answer: Answer, subscription: Document
) -> Document | None:
    """Write the attempt and its outcome; None if another run recorded it first."""
    now = deps.clock.now()
    schedule = subscription.get("retry_schedule")
    delay = None
    if answer.verdict == "retry":
        delay = next_delay(
            job.attempt - 1,
            DEFAULT_SCHEDULE if schedule is None else schedule,
            rng=deps.rng,
            retry_after=answer.retry_after,
        )
    entry = {
        "at": to_utc_text(now),
        "status_code": answer.status_code,
        "latency_ms": answer.latency_ms,
        "response": answer.response,
        "error": answer.error,
    }

    async def write(d: Document) -> Keep[None] | None:
        if d["status"] != "pending" or int(d.get("attempt_count") or 0) >= job.attempt:
            return Keep(None)  # another run recorded it first
        d["attempt_count"] = job.attempt
        d["attempts"] = [*(d.get("attempts") or []), entry][-ATTEMPTS_KEPT:]
        d["status"] = "delivered" if answer.verdict == "delivered" else "failed"
        d["next_attempt_at"] = None
        if delay is not None:
            d["status"] = "pending"
            d["next_attempt_at"] = to_utc_text(now + timedelta(seconds=delay))
        d["error"] = answer.error
        d["updated_at"] = to_utc_text(now)
        return None

    load = lambda: _read(deps, job.tenant_id, job.delivery_id)  # noqa: E731
    tries = concurrency.for_queue(f"recording the attempt of {job.delivery_id}")
    done = await concurrency.update(deps.store, WEBHOOK_DELIVERIES, load, write, tries, first=doc)
    return done.doc if done is not None else None


async def _settle(deps: Deps, doc: Document, error: str) -> bool:
    """Fail a pending delivery without an attempt; False if it was settled meanwhile."""

    async def settle(d: Document) -> bool | Keep[bool]:
        if d["status"] != "pending":
            return Keep(False)
        d.update(status="failed", next_attempt_at=None, error=error)
        d["updated_at"] = to_utc_text(deps.clock.now())
        return True

    load = lambda: _read(deps, doc["tenant_id"], doc["id"])  # noqa: E731
    tries = concurrency.for_queue(f"settling the delivery {doc['id']}")
    done = await concurrency.update(deps.store, WEBHOOK_DELIVERIES, load, settle, tries, first=doc)
    return done is not None and done.outcome


async def _follow_up(
    deps: Deps, doc: Document, subscription: Document | None, *, redelivered: bool = False
) -> Outcome:
    """What a recorded attempt implies, derived from the document alone (so a
    redelivered job can run it again): the endpoint's health, then the retry."""
    now = deps.clock.now()
    settings = deps.settings
    change = webhook_health.after_attempt(
        doc,
        now,
        warn_after=timedelta(seconds=settings.OCM_WEBHOOK_WARN_AFTER_SECONDS),
        disable_after=timedelta(seconds=settings.OCM_WEBHOOK_DISABLE_AFTER_SECONDS),
        redelivered=redelivered,
    )
    await _change_subscription(deps, doc["tenant_id"], doc["webhook_id"], subscription, change)
    if doc["status"] == "pending" and doc.get("next_attempt_at"):
        due = datetime.fromisoformat(doc["next_attempt_at"])
        job = WebhookJob.of(doc, int(doc["attempt_count"]) + 1)
        await jobs.enqueue(deps, job, due if due > now else None)
        return "retrying"
    return "delivered" if doc["status"] == "delivered" else "failed"


async def _change_subscription(
    deps: Deps,
    tenant_id: str,
    webhook_id: str,
    subscription: Document | None,
    change: webhook_health.Change,
) -> None:
    """Apply ``change`` (None: nothing to change) under the etag, with the events it
    returns kept on the subscription in the same write (an outbox): they are
    published after it and then cleared, and a run that finds some still pending (a
    crash or a failed send in between) publishes them again under the same ids."""

    async def apply(sub: Document) -> Keep[Document] | None:
        events = change(sub)
        if events is None:
            return Keep(sub)  # unchanged; events a crash left pending still go out
        now = deps.clock.now()
        sub["pending_events"] = [
            *(sub.get("pending_events") or []),
            *({"id": new_id("evt", now), "type": t, "data": d} for t, d in events),
        ]
        sub["updated_at"] = to_utc_text(now)
        return None

    load = lambda: deps.store.read(WEBHOOKS, tenant_id, webhook_id)  # noqa: E731
    tries = concurrency.for_queue(f"changing the webhook {webhook_id}")
    done: Updated[Document, Document | None] | None = await concurrency.update(
        deps.store, WEBHOOKS, load, apply, tries, first=subscription
    )
    if done is None:
        return
    if done.doc is not None:
        interest.forget(deps, tenant_id)
    sub = done.doc or done.outcome
    if sub is not None:
        await _publish_pending(deps, sub)


async def _publish_pending(deps: Deps, sub: Document) -> None:
    pending = sub.get("pending_events") or []
    for event in pending:
        await publish.publish_platform_event(
            deps, sub["tenant_id"], event["type"], event["data"], event_id=event["id"]
        )
    if pending:
        with contextlib.suppress(PreconditionFailed):  # a newer writer hands off its own
            await deps.store.patch(
                WEBHOOKS, sub["tenant_id"], sub["id"], {"pending_events": []}, etag=sub["_etag"]
            )
        interest.forget(deps, sub["tenant_id"])
