"""Webhook delivery: one signed POST per job, recorded, retried on the subscription's
schedule; the endpoint's health (a warning, then disabling) follows the outcomes.

A job ``{tenant_id, delivery_id, attempt}`` (message id ``{delivery_id}:{attempt}``)
names the attempt its delivery document expects next; any other job is dropped.
The attempt is written to the document before anything follows from it (the
subscription's health, the retry's job). A redelivered job whose attempt is
recorded already does not POST again: it re-runs only those follow-ups, which are
idempotent (the retry's job has the same message id, which the queue drops).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from shared.containers import WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhooks import (
    DEFAULT_SCHEDULE,
    next_delay,
)
from shared.ports import PreconditionFailed
from shared.services.deps import Deps
from shared.services.events import interest, publish
from shared.services.webhooks import attempt as webhook_attempt
from shared.services.webhooks import jobs
from shared.services.webhooks.attempt import Answer
from shared.services.webhooks.jobs import WebhookJob

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "retrying", "failed", "dropped", "missing", "unreadable"]
Events = list[tuple[str, dict[str, Any]]]
"""Platform events to publish: (type, data)."""
Change = Callable[[Document], Events | None]
"""Changes a subscription in place and returns its events, or None if it has nothing
to change."""

GONE_REASON = "410 Gone from the endpoint"
ATTEMPTS_KEPT = 50


async def deliver(deps: Deps, body: bytes) -> Outcome:
    """Handle one delivery job; safe to call any number of times for the same job."""
    job = WebhookJob.decode(body)
    if job is None:
        log.error("unreadable webhook delivery job dropped")
        return "unreadable"
    doc = await deps.store.read(WEBHOOK_DELIVERIES, job.tenant_id, job.delivery_id)
    if doc is None:
        return "missing"
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
    job = WebhookJob.decode(body)
    if job is None:
        log.error("unreadable dead-lettered webhook delivery job dropped")
        return "unreadable"
    doc = await deps.store.read(WEBHOOK_DELIVERIES, job.tenant_id, job.delivery_id)
    if doc is None:
        return "missing"
    if doc["status"] != "pending" or job.attempt < int(doc.get("attempt_count") or 0):
        return "settled"
    log.error("webhook delivery %s dead-lettered (%s)", job.delivery_id, reason)
    return "failed" if await _settle(deps, doc, "DEAD_LETTERED") else "settled"


# ---------------------------------------------------------------------------
# Recording, and what follows
# ---------------------------------------------------------------------------


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
    for _ in range(5):
        doc["attempt_count"] = job.attempt
        doc["attempts"] = [*(doc.get("attempts") or []), entry][-ATTEMPTS_KEPT:]
        doc["status"] = "delivered" if answer.verdict == "delivered" else "failed"
        doc["next_attempt_at"] = None
        if delay is not None:
            doc["status"] = "pending"
            doc["next_attempt_at"] = to_utc_text(now + timedelta(seconds=delay))
        doc["error"] = answer.error
        doc["updated_at"] = to_utc_text(now)
        try:
            return await deps.store.replace(WEBHOOK_DELIVERIES, doc, etag=doc["_etag"])
        except PreconditionFailed:
            fresh = await deps.store.read(WEBHOOK_DELIVERIES, job.tenant_id, job.delivery_id)
            if fresh is None or fresh["status"] != "pending":
                return None
            if int(fresh.get("attempt_count") or 0) >= job.attempt:
                return None
            doc = fresh
    raise RuntimeError("concurrent updates of a webhook delivery; the queue will redeliver")


async def _settle(deps: Deps, doc: Document, error: str) -> bool:
    """Fail a pending delivery without an attempt; False if it was settled meanwhile."""
    for _ in range(5):
        doc.update(status="failed", next_attempt_at=None, error=error)
        doc["updated_at"] = to_utc_text(deps.clock.now())
        try:
            await deps.store.replace(WEBHOOK_DELIVERIES, doc, etag=doc["_etag"])
            return True
        except PreconditionFailed:
            fresh = await deps.store.read(WEBHOOK_DELIVERIES, doc["tenant_id"], doc["id"])
            if fresh is None or fresh["status"] != "pending":
                return False
            doc = fresh
    raise RuntimeError("concurrent updates of a webhook delivery; the queue will redeliver")


async def _follow_up(
    deps: Deps, doc: Document, subscription: Document | None, *, redelivered: bool = False
) -> Outcome:
    """What a recorded attempt implies, derived from the document alone (so a
    redelivered job can run it again): the endpoint's health, then the retry.

    A redelivered job changes the health only if nothing changed the subscription
    since its attempt: a later attempt's outcome (another delivery's) knows better."""
    now = deps.clock.now()
    settings = deps.settings
    last = (doc.get("attempts") or [{}])[-1]
    change: Change
    if doc["status"] == "delivered":
        change = _recovered
    elif last.get("status_code") == 410:
        change = partial(_disable, reason=GONE_REASON)
    else:
        change = partial(
            _failing,
            now=now,
            error=str(last.get("error") or "failed"),
            warn_after=timedelta(seconds=settings.OCM_WEBHOOK_WARN_AFTER_SECONDS),
            disable_after=timedelta(seconds=settings.OCM_WEBHOOK_DISABLE_AFTER_SECONDS),
        )
    if redelivered:
        change = partial(_unless_newer, change=change, attempted=str(last.get("at") or ""))
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
    change: Change,
) -> None:
    """Apply ``change`` (None: nothing to change) under the etag, with the events it
    returns kept on the subscription in the same write (an outbox): they are
    published after it and then cleared, and a run that finds some still pending (a
    crash or a failed send in between) publishes them again under the same ids."""
    for _ in range(5):
        sub = subscription or await deps.store.read(WEBHOOKS, tenant_id, webhook_id)
        subscription = None
        if sub is None:
            return
        events = change(sub)
        if events is None and not sub.get("pending_events"):
            return
        if events is not None:
            now = deps.clock.now()
            sub["pending_events"] = [
                *(sub.get("pending_events") or []),
                *({"id": new_id("evt", now), "type": t, "data": d} for t, d in events),
            ]
            sub["updated_at"] = to_utc_text(now)
            try:
                sub = await deps.store.replace(WEBHOOKS, sub, etag=sub["_etag"])
            except PreconditionFailed:
                continue
            interest.forget(deps, tenant_id)
        await _publish_pending(deps, sub)
        return
    raise RuntimeError("concurrent updates of a webhook subscription; the queue will redeliver")


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


def _unless_newer(sub: Document, *, change: Change, attempted: str) -> Events | None:
    if str(sub.get("updated_at") or "") > attempted:
        return None
    return change(sub)


def _about(sub: Document, reason: str) -> dict[str, Any]:
    """The data of a ``webhook.endpoint.*`` event."""
    return {
        "webhook_id": sub["id"],
        "url": sub.get("url"),
        "failing_since": sub.get("failing_since"),
        "reason": reason,
    }


def _recovered(sub: Document) -> Events | None:
    if sub.get("failing_since") is None and not sub.get("failing_warned"):
        return None
    sub["failing_since"] = None
    sub["failing_warned"] = False
    return []


def _disable(sub: Document, *, reason: str) -> Events | None:
    if not sub.get("enabled", True):
        return None
    sub["enabled"] = False
    sub["disabled_reason"] = reason
    return [("webhook.endpoint.disabled", _about(sub, reason))]


def _failing(
    sub: Document, *, now: datetime, error: str, warn_after: timedelta, disable_after: timedelta
) -> Events | None:
    """Start the failing period, warn once past ``warn_after``, disable past
    ``disable_after`` (a failing period is ended by any success)."""
    if not sub.get("enabled", True):
        return None
    started = sub.get("failing_since") is None
    if started:
        sub["failing_since"] = to_utc_text(now)
    since = datetime.fromisoformat(str(sub["failing_since"]))
    if now - since >= disable_after:
        return _disable(sub, reason=f"failing since {sub['failing_since']}")
    if now - since >= warn_after and not sub.get("failing_warned"):
        sub["failing_warned"] = True
        until = to_utc_text(since + disable_after)
        reason = f"{error}; disabled at {until} unless a delivery succeeds before"
        return [("webhook.endpoint.failing", _about(sub, reason))]
    return [] if started else None
