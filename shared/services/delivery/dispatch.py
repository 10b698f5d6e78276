"""Dispatch: claim a queued message, call its provider once, record the outcome.

A job (``shared.domain.jobs``) names the one dispatch the message document expects
next. Duplicates and stale jobs are dropped; a redelivered job that finds its own
claim with no outcome recorded (a crash mid-send) sends once more — at-least-once
towards providers, with a stable idempotency key for those that take one. What the
provider's answer does to the message is ``outcomes``'.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from shared import telemetry
from shared.containers import CHANNELS
from shared.domain.errors import ProviderError
from shared.domain.jobs import DispatchJob
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.redaction import redact
from shared.domain.status import FINAL
from shared.domain.timeline import change_status, error_info
from shared.ports import SendRequest, SendResult
from shared.services import concurrency
from shared.services.channels.channels import load_credentials
from shared.services.concurrency import Keep, Updated
from shared.services.delivery import policy as delivery_policy
from shared.services.delivery import provider_events
from shared.services.delivery.outcomes import Outcome, after_failure, apply_result, reschedule
from shared.services.deps import Deps
from shared.services.messaging import fallback, outbox, repository

log = logging.getLogger(__name__)


def _claim_is_fresh(doc: MessageDocument, now: datetime, timeout: float) -> bool:
    claim = doc.get("claim")
    at = claim["at"] if claim else None
    return at is not None and now - datetime.fromisoformat(at) < timedelta(seconds=timeout)


def _should_send(doc: MessageDocument, job: DispatchJob, now: datetime, timeout: float) -> bool:
    """Whether this job may (re)send the message."""
    status = doc["status"]
    if status in FINAL or status in ("sent", "delivered"):
        return False
    if status == "sending":
        claim = doc.get("claim")
        held_by = claim["job"] if claim else None
        return held_by == job.job or not _claim_is_fresh(doc, now, timeout)
    slot = doc.get("dispatch")
    return slot is not None and slot["job"] == job.job


async def handle(deps: Deps, body: bytes) -> Outcome:
    """Handle one queue message of the outbound queue; an unreadable one is dropped
    (it could never succeed: retrying it would only dead-letter it)."""
    job = DispatchJob.decode(body)
    if job is None:
        log.error("unreadable dispatch job dropped")
        return "unreadable"
    return await dispatch(deps, job)


async def dispatch(deps: Deps, job: DispatchJob) -> Outcome:
    """Handle one dispatch job; safe to call any number of times for the same job."""
    with telemetry.span(
        "dispatch", job.traceparent, message_id=job.message_id, tenant_id=job.tenant_id
    ):
        if job.is_fallback:
            return await fallback.fire(deps, job.tenant_id, job.message_id, job.job)
        return await _dispatch(deps, job)


Claimed = tuple[Outcome | None, Document | None]
"""What the claim write decided: an outcome already applied (the message is not
sent now), or None and the channel to send on."""


async def _dispatch(deps: Deps, job: DispatchJob) -> Outcome:
    async def claim(doc: MessageDocument) -> Claimed | Keep[Claimed]:
        now = deps.clock.now()
        if not _should_send(doc, job, now, deps.settings.OCM_CLAIM_TIMEOUT_SECONDS):
            return Keep(("dropped", None))
        outcome, channel = await _before_send(deps, doc, now)
        if outcome is None:
            outbox.mark_published(doc)
            _claim(doc, job, now)
        return outcome, channel

    tries = concurrency.for_queue(f"claiming {job.message_id}")
    done: Updated[MessageDocument, Claimed] | None = await repository.update(
        deps, job.tenant_id, job.message_id, claim, tries
    )
    if done is None:
        return "missing"
    (outcome, channel), written = done.outcome, done.doc
    if written is None or outcome is not None:
        if written is not None:
            await outbox.hand_off(deps, [written])
        return outcome or "dropped"
    assert channel is not None
    await deps.flush()  # the claim is on disk before anything leaves the process
    return await _send_and_record(deps, written, channel)


async def _before_send(deps: Deps, doc: MessageDocument, now: datetime) -> Claimed:
    """Expiry and channel checks; returns an outcome already applied to ``doc``."""
    expires = doc.get("expires_at")
    if expires and datetime.fromisoformat(expires) <= now and doc["status"] != "sending":
        change_status(doc, "expired", now, error=error_info("EXPIRED", "expired", permanent=True))
        return "expired", None
    channel = await deps.store.read(CHANNELS, doc["tenant_id"], doc["channel_id"])
    if channel is None or channel["status"] == "deleted":
        error = error_info("CHANNEL_DELETED", "The channel was deleted", permanent=True)
        doc["claim"] = None
        change_status(doc, "failed", now, error=error)
        return "failed", None
    until = delivery_policy.paused_until(channel, now)
    if channel["status"] == "paused" or until is not None:
        # Paused by its admin, or by the provider's 429: a backup takes over, if any.
        backup = await delivery_policy.next_backup(deps, doc)
        if backup is None:
            recheck = now + timedelta(seconds=deps.settings.OCM_PAUSED_RECHECK_SECONDS)
            reschedule(doc, until or recheck, "paused")
            return "paused", None
        reason = "paused" if channel["status"] == "paused" else "throttled"
        delivery_policy.fail_over(doc, backup, now, reason)
        channel = backup
    turn = await delivery_policy.pace(deps, channel, now)
    if turn is not None:
        reschedule(doc, turn, "paused")
        return "paced", None
    return None, channel


def _claim(doc: MessageDocument, job: DispatchJob, now: datetime) -> None:
    attempt = doc["dispatch"]["attempt"]
    doc["status"] = "sending"
    doc["claim"] = {"job": job.job, "at": to_utc_text(now)}
    doc["attempts"] = attempt
    doc["outbox_at"] = None


async def _call_provider(
    deps: Deps, doc: MessageDocument, channel: Document
) -> SendResult | ProviderError:
    sender = deps.senders.get(channel["provider"])
    if sender is None:
        return ProviderError(
            "permanent", "PROVIDER_UNAVAILABLE", f"No sender for {channel['provider']}"
        )
    request = SendRequest(
        tenant_id=doc["tenant_id"],
        message=doc,
        channel=channel,
        credentials=await load_credentials(deps, channel),
        attempt=doc["attempts"],
        throttles=doc.get("throttles", 0),
        idempotency_key=doc["id"],
    )
    try:
        with telemetry.span(
            "provider.send",
            provider=channel["provider"],
            message_id=doc["id"],
            attempt=doc["attempts"],
        ):
            return await sender.send(request)
    except ProviderError as err:
        return _masked(deps, err, channel, request.credentials)
    except Exception:
        log.exception("provider %s raised unexpectedly for %s", channel["provider"], doc["id"])
        return ProviderError("transient", "PROVIDER_ERROR", "The provider call failed unexpectedly")


def _masked(
    deps: Deps, error: ProviderError, channel: Document, credentials: Mapping[str, str]
) -> ProviderError:
    """The error with every encoding of the channel's secret credentials masked: its
    reason is stored, and readable with read:message (an endpoint may echo the
    request's Authorization header)."""
    spec = deps.catalog.specs.get((channel["type"], channel["provider"]))
    names = {f.name for f in spec.credentials if f.secret} if spec else set(credentials)
    secrets = [v for k, v in credentials.items() if k in names and v]
    reason = redact(error.reason, secrets, [v for v in credentials.values() if v])
    return error if reason == error.reason else replace(error, reason=reason)


async def _send_and_record(deps: Deps, claimed: MessageDocument, channel: Document) -> Outcome:
    result = await _call_provider(deps, claimed, channel)
    failover = None
    if isinstance(result, ProviderError):
        failover = await after_failure(deps, claimed, channel, result)

    async def record(doc: MessageDocument) -> Outcome:
        return apply_result(deps, doc, result, deps.clock.now(), failover)

    # A receipt may overtake the send's own record: then ours is applied on top.
    tries = concurrency.for_queue(f"recording the send of {claimed['id']}")
    done: Updated[MessageDocument, Outcome] | None = await repository.update(
        deps, claimed["tenant_id"], claimed["id"], record, tries, first=claimed
    )
    if done is None:
        return "missing"
    assert done.doc is not None  # record always writes
    await outbox.hand_off(deps, [done.doc])
    if isinstance(result, SendResult) and result.followups:
        await provider_events.enqueue(deps, result.followups)
    return done.outcome
