"""Dispatch: claim a queued message, call its provider once, record the outcome.

A job is a queue message ``{message_id}:{attempt}[:suffix]`` naming the one
dispatch the message document expects next. Duplicates and stale jobs are
dropped; a redelivered job that finds its own claim with no outcome recorded
(a crash mid-send) sends once more — at-least-once towards providers, with a
stable idempotency key for those that take one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared import telemetry
from shared.containers import CHANNELS, MESSAGES
from shared.domain.errors import ProviderError
from shared.domain.jobs import DispatchJob, Hold, dispatch_job_id, held_job_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.retry import MAX_RETRY_AFTER, retry_delay
from shared.domain.status import FINAL
from shared.domain.timeline import add_event, change_status, error_info, schedule
from shared.ports import PreconditionFailed, SendRequest, SendResult
from shared.services.channels import channels as channel_service
from shared.services.channels.channels import load_credentials
from shared.services.delivery import policy as delivery_policy
from shared.services.delivery import provider_events
from shared.services.deps import Deps
from shared.services.messaging import fallback, outbox
from shared.services.receivers import opt_outs

log = logging.getLogger(__name__)

Outcome = Literal[
    "sent",
    "failed",
    "retrying",
    "throttled",
    "expired",
    "paused",
    "paced",
    "dropped",
    "missing",
    "fallback",
    "refused",
    "unreadable",
]


def _claim_is_fresh(doc: Document, now: datetime, timeout: float) -> bool:
    claim = doc.get("claim") or {}
    at = claim.get("at")
    return at is not None and now - datetime.fromisoformat(at) < timedelta(seconds=timeout)


def _should_send(doc: Document, job: DispatchJob, now: datetime, timeout: float) -> bool:
    """Whether this job may (re)send the message."""
    status = doc["status"]
    if status in FINAL or status in ("sent", "delivered"):
        return False
    if status == "sending":
        claim = doc.get("claim") or {}
        return claim.get("job") == job.job or not _claim_is_fresh(doc, now, timeout)
    return bool((doc.get("dispatch") or {}).get("job") == job.job)


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
        return await _dispatch(deps, job)


async def _dispatch(deps: Deps, job: DispatchJob) -> Outcome:
    if job.is_fallback:
        return await fallback.fire(deps, job.tenant_id, job.message_id, job.job)
    for _ in range(5):
        doc = await deps.store.read(MESSAGES, job.tenant_id, job.message_id)
        if doc is None:
            return "missing"
        now = deps.clock.now()
        if not _should_send(doc, job, now, deps.settings.OCM_CLAIM_TIMEOUT_SECONDS):
            return "dropped"
        outcome, channel = await _before_send(deps, doc, now)
        if outcome is None:
            outbox.mark_published(doc)
            _claim(doc, job, now)
        try:
            written = await deps.store.replace(MESSAGES, doc, etag=doc["_etag"])
        except PreconditionFailed:
            continue
        if outcome is not None:
            await outbox.hand_off(deps, [written])
            return outcome
        assert channel is not None
        await deps.flush()  # the claim is on disk before anything leaves the process
        return await _send_and_record(deps, written, channel)
    log.warning("dispatch of %s gave up after repeated concurrent updates", job.message_id)
    raise RuntimeError("concurrent updates; the queue will redeliver")


async def _before_send(
    deps: Deps, doc: Document, now: datetime
) -> tuple[Outcome | None, Document | None]:
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
            _reschedule(doc, until or recheck, "paused")
            return "paused", None
        reason = "paused" if channel["status"] == "paused" else "throttled"
        delivery_policy.fail_over(doc, backup, now, reason)
        channel = backup
    turn = await delivery_policy.pace(deps, channel, now)
    if turn is not None:
        _reschedule(doc, turn, "paused")
        return "paced", None
    return None, channel


def _claim(doc: Document, job: DispatchJob, now: datetime) -> None:
    attempt = doc["dispatch"]["attempt"]
    doc["status"] = "sending"
    doc["claim"] = {"job": job.job, "at": to_utc_text(now)}
    doc["attempts"] = attempt
    doc["outbox_at"] = None


def _reschedule(doc: Document, due: datetime, hold: Hold) -> None:
    """A new job for the same attempt (throttled, or paused or paced): uses no attempt.

    Throttles count towards OCM_MAX_THROTTLES; holds for a paused channel do not.
    """
    attempt = doc["dispatch"]["attempt"]
    counter = "throttles" if hold == "throttled" else "holds"
    doc[counter] = doc.get(counter, 0) + 1
    doc["status"] = "queued"
    doc["claim"] = None
    doc["attempts"] = attempt - 1
    schedule(doc, held_job_id(doc["id"], attempt, hold, doc[counter]), attempt, due)


async def _call_provider(
    deps: Deps, doc: Document, channel: Document
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
        return err
    except Exception:
        log.exception("provider %s raised unexpectedly for %s", channel["provider"], doc["id"])
        return ProviderError("transient", "PROVIDER_ERROR", "The provider call failed unexpectedly")


async def _send_and_record(deps: Deps, claimed: Document, channel: Document) -> Outcome:
    result = await _call_provider(deps, claimed, channel)
    failover = None
    if isinstance(result, ProviderError):
        failover = await _after_failure(deps, claimed, channel, result)
    doc = claimed
    for _ in range(5):
        outcome = _apply_result(deps, doc, result, deps.clock.now(), failover)
        try:
            written = await deps.store.replace(MESSAGES, doc, etag=doc["_etag"])
        except PreconditionFailed:
            # A receipt may overtake the send's own record; apply ours on top.
            fresh = await deps.store.read(MESSAGES, claimed["tenant_id"], claimed["id"])
            if fresh is None:
                return "missing"
            doc = fresh
            continue
        await outbox.hand_off(deps, [written])
        if isinstance(result, SendResult) and result.followups:
            await provider_events.enqueue(deps, result.followups)
        return outcome
    raise RuntimeError("could not record the send outcome; the queue will redeliver")


@dataclass(frozen=True, slots=True)
class Failover:
    backup: Document
    after: int
    """Transient failures on one channel before moving on (the first channel's policy)."""


async def _after_failure(
    deps: Deps, doc: Document, channel: Document, error: ProviderError
) -> Failover | None:
    """A 429 pauses the channel; a permanent refusal of the receiver opts them out; a
    transient failure may call for the next backup."""
    now = deps.clock.now()
    if error.kind == "throttled" and not error.details.get("per_receiver"):
        wait = error.retry_after
        await delivery_policy.pause(
            deps, channel, deps.settings.OCM_RETRY_BASE_SECONDS if wait is None else wait, now
        )
    if error.kind == "permanent" and error.details.get("opt_out") and doc.get("receiver"):
        await opt_outs.add(
            deps,
            doc["tenant_id"],
            channel["type"],
            doc["receiver"]["address"],
            error.details["opt_out"],  # type: ignore[arg-type]
            message_id=doc["id"],
            provider_status=error.provider_status,
        )
    if error.kind != "transient":
        return None
    origin = await delivery_policy.origin_of(deps, doc)
    policy = channel_service.policy_of(origin) if origin is not None else None
    if policy is None or not policy.backups:
        return None
    backup = await delivery_policy.next_backup(deps, doc)
    if backup is None:
        return None
    return Failover(backup, policy.failover_after)


def _apply_result(
    deps: Deps,
    doc: Document,
    result: SendResult | ProviderError,
    now: datetime,
    failover: Failover | None = None,
) -> Outcome:
    attempt = doc["attempts"]
    doc["claim"] = None
    if doc["status"] != "sending":  # a receipt or another worker moved it on meanwhile
        if isinstance(result, SendResult):
            change_status(
                doc, "sent", now, attempt=attempt, provider_message_id=result.provider_message_id
            )
            if doc.get("provider_message_id") is None:
                doc["provider_message_id"] = result.provider_message_id
        return "sent" if isinstance(result, SendResult) else "dropped"
    if isinstance(result, SendResult):
        change_status(
            doc, "sent", now, attempt=attempt, provider_message_id=result.provider_message_id
        )
        return "sent"
    error = error_info(
        result.code,
        result.reason,
        permanent=result.kind == "permanent",
        provider_status=result.provider_status,
    )
    settings = deps.settings
    if result.kind == "throttled" and doc.get("throttles", 0) < settings.OCM_MAX_THROTTLES:
        wait = (
            result.retry_after
            if result.retry_after is not None
            else settings.OCM_RETRY_BASE_SECONDS
        )
        wait = min(max(wait, 0.0), MAX_RETRY_AFTER)
        _reschedule(doc, now + timedelta(seconds=wait), "throttled")
        return "throttled"
    if (
        result.kind == "transient"
        and attempt < doc["max_attempts"]
        and failover is not None
        and delivery_policy.failures_reached(doc, failover.after)
    ):
        doc["status"] = "queued"
        reason = f"{result.code}, {doc['channel_failures']} times"
        delivery_policy.fail_over(doc, failover.backup, now, reason)
        schedule(doc, dispatch_job_id(doc["id"], attempt + 1), attempt + 1, now)
        return "retrying"
    if result.kind == "transient" and attempt < doc["max_attempts"]:
        delay = retry_delay(
            attempt,
            base=settings.OCM_RETRY_BASE_SECONDS,
            cap=settings.OCM_RETRY_MAX_SECONDS,
            rng=deps.rng,
            retry_after=result.retry_after,
        )
        due = now + timedelta(seconds=delay)
        doc["status"] = "queued"
        schedule(doc, dispatch_job_id(doc["id"], attempt + 1), attempt + 1, due)
        add_event(
            doc,
            "message.retrying",
            now,
            attempt=attempt,
            error=error,
            next_attempt_at=to_utc_text(due),
        )
        return "retrying"
    if result.kind != "permanent":
        error["reason"] = f"{result.reason} (gave up after {attempt} attempts)"
    change_status(doc, "failed", now, attempt=attempt, error=error)
    return "failed"
