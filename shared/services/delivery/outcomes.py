"""What a provider's answer does to a message: it was sent; it is held (a 429, a
paused or paced channel) without using an attempt; it is retried later, on its
channel or the next backup; or it failed for good.

Each rule changes the message document in place (the status, its timeline entry and
event, and the next dispatch job together), so dispatch persists all of it in one
write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from shared.domain.errors import ProviderError
from shared.domain.jobs import Hold, dispatch_job_id, held_job_id
from shared.domain.message_document import ErrorInfo, MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.opt_outs import OptOutReason
from shared.domain.retry import MAX_RETRY_AFTER, retry_delay
from shared.domain.timeline import add_event, change_status, error_info, schedule
from shared.ports import SendResult
from shared.services.channels import channels as channel_service
from shared.services.delivery import policy as delivery_policy
from shared.services.deps import Deps
from shared.services.receivers import opt_outs

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


def reschedule(doc: MessageDocument, due: datetime, hold: Hold) -> None:
    """A new job for the same attempt (throttled, or paused or paced): uses no attempt.

    Throttles count towards OCM_MAX_THROTTLES; holds for a paused channel do not.
    """
    attempt = doc["dispatch"]["attempt"]
    if hold == "throttled":
        count = doc["throttles"] = doc.get("throttles", 0) + 1
    else:
        count = doc["holds"] = doc.get("holds", 0) + 1
    doc["status"] = "queued"
    doc["claim"] = None
    doc["attempts"] = attempt - 1
    schedule(doc, held_job_id(doc["id"], attempt, hold, count), attempt, due)


@dataclass(frozen=True, slots=True)
class Failover:
    backup: Document
    after: int
    """Transient failures on one channel before moving on (the first channel's policy)."""


async def after_failure(
    deps: Deps, doc: MessageDocument, channel: Document, error: ProviderError
) -> Failover | None:
    """A 429 pauses the channel; a permanent refusal of the receiver opts them out; a
    transient failure may call for the next backup."""
    now = deps.clock.now()
    if error.kind == "throttled" and not error.details.get("per_receiver"):
        wait = error.retry_after
        await delivery_policy.pause(
            deps, channel, deps.settings.OCM_RETRY_BASE_SECONDS if wait is None else wait, now
        )
    if error.kind == "permanent" and error.details.get("opt_out"):
        reason = cast(OptOutReason, error.details["opt_out"])  # the providers' own words
        await opt_outs.opt_out_receiver(deps, doc, channel["type"], reason, error.provider_status)
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


def apply_result(
    deps: Deps,
    doc: MessageDocument,
    result: SendResult | ProviderError,
    now: datetime,
    failover: Failover | None = None,
) -> Outcome:
    """Record what the provider answered on the claimed message ``doc``."""
    doc["claim"] = None
    if isinstance(result, SendResult):
        return _on_sent(doc, result, now)
    if doc["status"] != "sending":  # a receipt or another worker moved it on meanwhile
        return "dropped"
    settings = deps.settings
    if result.kind == "throttled" and doc.get("throttles", 0) < settings.OCM_MAX_THROTTLES:
        wait = settings.OCM_RETRY_BASE_SECONDS if result.retry_after is None else result.retry_after
        reschedule(doc, now + timedelta(seconds=min(max(wait, 0.0), MAX_RETRY_AFTER)), "throttled")
        return "throttled"
    if result.kind == "transient" and doc["attempts"] < doc["max_attempts"]:
        return _on_transient(deps, doc, result, now, failover)
    return _give_up(doc, result, now)


def _on_sent(doc: MessageDocument, result: SendResult, now: datetime) -> Outcome:
    sent = result.provider_message_id
    change_status(doc, "sent", now, attempt=doc["attempts"], provider_message_id=sent)
    if doc.get("provider_message_id") is None:  # a receipt moved it on, unnamed: name it
        doc["provider_message_id"] = sent
    return "sent"


def _on_transient(
    deps: Deps,
    doc: MessageDocument,
    result: ProviderError,
    now: datetime,
    failover: Failover | None,
) -> Outcome:
    """Another attempt: on the next backup once the channel failed often enough, else
    on the same channel after a backoff."""
    attempt = doc["attempts"]
    doc["status"] = "queued"
    if failover is not None and delivery_policy.failures_reached(doc, failover.after):
        reason = f"{result.code}, {doc['channel_failures']} times"
        delivery_policy.fail_over(doc, failover.backup, now, reason)
        schedule(doc, dispatch_job_id(doc["id"], attempt + 1), attempt + 1, now)
        return "retrying"
    settings = deps.settings
    delay = retry_delay(
        attempt,
        base=settings.OCM_RETRY_BASE_SECONDS,
        cap=settings.OCM_RETRY_MAX_SECONDS,
        rng=deps.rng,
        retry_after=result.retry_after,
    )
    due = now + timedelta(seconds=delay)
    schedule(doc, dispatch_job_id(doc["id"], attempt + 1), attempt + 1, due)
    add_event(
        doc,
        "message.retrying",
        now,
        attempt=attempt,
        error=_error(result),
        next_attempt_at=to_utc_text(due),
    )
    return "retrying"


def _give_up(doc: MessageDocument, result: ProviderError, now: datetime) -> Outcome:
    attempt = doc["attempts"]
    error = _error(result)
    if result.kind != "permanent":
        error["reason"] = f"{result.reason} (gave up after {attempt} attempts)"
    change_status(doc, "failed", now, attempt=attempt, error=error)
    return "failed"


def _error(result: ProviderError) -> ErrorInfo:
    return error_info(
        result.code,
        result.reason,
        permanent=result.kind == "permanent",
        provider_status=result.provider_status,
    )
