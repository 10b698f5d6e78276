"""The message document's timeline: status changes and the events they emit.

A status change, its timeline entry and its pending event are made together on
the document, so one write persists all three (the events' outbox).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import orjson

from shared.domain.encoding import shortened
from shared.domain.jobs import fallback_job_id
from shared.domain.message_document import ErrorInfo, MessageDocument, TimelineEntry
from shared.domain.messages import to_utc_text
from shared.domain.status import can_move, emits_event


def event_id(message_id: str, seq: int) -> str:
    """Deterministic: the n-th timeline entry of a message always has this id."""
    return f"evt_{message_id.removeprefix('msg_')}_{seq}"


def _append(doc: MessageDocument, entry: dict[str, Any], at: datetime) -> str:
    events = doc.setdefault("events", [])
    eid = event_id(doc["id"], len(events))
    events.append(cast(TimelineEntry, {"id": eid, **entry, "at": to_utc_text(at)}))
    pending = doc.setdefault("pending_events", [])
    pending.append(eid)
    if doc.get("events_at") is None:
        doc["events_at"] = to_utc_text(at)
    return eid


def _details(
    attempt: int | None,
    provider_message_id: str | None,
    error: ErrorInfo | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attempt is not None:
        out["attempt"] = attempt
    if provider_message_id is not None:
        out["provider_message_id"] = provider_message_id
    if error is not None:
        out["error"] = error
    if extra:
        out.update(extra)
    return out


ENDS_THE_JOB = frozenset({"failed", "expired", "cancelled"})
"""Statuses after which a message's pending dispatch job is spent (its fallback's
job, if it has one, is armed in its place)."""


def change_status(
    doc: MessageDocument,
    status: str,
    at: datetime,
    *,
    attempt: int | None = None,
    provider_message_id: str | None = None,
    error: ErrorInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Move the message to ``status`` if that is forward progress.

    Returns False (and records a non-event timeline entry) when the change would
    go backwards, e.g. a late ``sent`` after ``delivered``.
    """
    details = _details(attempt, provider_message_id, error, extra)
    if not can_move(doc["status"], status):
        ignored = {"type": "status.ignored", "status": status, "at": to_utc_text(at), **details}
        doc.setdefault("events", []).append(cast(TimelineEntry, ignored))
        return False
    doc["status"] = status
    doc["updated_at"] = to_utc_text(at)
    if status in ("failed", "expired") and error is not None:
        doc["error"] = error
    if provider_message_id is not None:
        doc["provider_message_id"] = provider_message_id
    if emits_event(status):
        _append(doc, {"type": f"message.{status}", "status": status, **details}, at)
    if status in ENDS_THE_JOB:
        doc["outbox_at"] = None  # the dispatch job it waited for will never be sent
    _arm_fallback(doc, status, at)
    return True


def schedule(doc: MessageDocument, job: str, attempt: int, due: datetime) -> None:
    """Record the one job dispatch will accept next (written with the document)."""
    doc["dispatch"] = {"job": job, "attempt": attempt, "due_at": to_utc_text(due)}
    doc["outbox_at"] = to_utc_text(due)


def _arm_fallback(doc: MessageDocument, status: str, at: datetime) -> None:
    """A message with a fallback gets its fallback job in the same write as the status
    that calls for it: failed or expired (now), or sent on a channel with receipts
    (``fallback_after`` seconds on, when no delivery receipt came by then)."""
    if not doc.get("fallback") or doc.get("fallback_id") or doc.get("fallback_error"):
        return
    attempt = int(doc.get("attempts") or 0)
    if status in ("failed", "expired"):
        schedule(doc, fallback_job_id(doc["id"], "failure"), attempt, at)
    elif status == "sent" and doc.get("fallback_after"):
        due = at + timedelta(seconds=doc["fallback_after"])
        schedule(doc, fallback_job_id(doc["id"], "timer"), attempt, due)


def start(doc: MessageDocument, status: str, at: datetime, **details: Any) -> None:
    """The first status of a new message, with its event."""
    doc["status"] = status
    doc["events"] = []
    doc["pending_events"] = []
    doc["events_at"] = None
    _append(doc, {"type": f"message.{status}", "status": status, **details}, at)


def add_event(doc: MessageDocument, event_type: str, at: datetime, **details: Any) -> str:
    """An event that is not a status change (``message.retrying``)."""
    doc["updated_at"] = to_utc_text(at)
    return _append(doc, {"type": event_type, "status": doc["status"], **details}, at)


MAX_REASON = 1_000
"""A provider's reason is its text, of any length: cut, since it travels in events."""


def error_info(code: str, reason: str, *, permanent: bool, **more: Any) -> ErrorInfo:
    info: dict[str, Any] = {
        "code": code,
        "reason": shortened(reason, MAX_REASON),
        "permanent": permanent,
    }
    info.update({k: v for k, v in more.items() if v is not None})
    return cast(ErrorInfo, info)


MAX_EVENT_CONTENT = 128 * 1024
"""An inbound message's content travels in its events up to this many bytes of JSON;
larger (an e-mail of up to 256 KiB), the event says ``content_omitted`` and the
content is read from the API, so every event fits in a Service Bus message."""


def event_payload(doc: MessageDocument, entry: TimelineEntry) -> dict[str, Any]:
    """The published form of one timeline entry (what webhooks will carry)."""
    data: dict[str, Any] = {
        "message_id": doc["id"],
        "channel": doc.get("channel"),
        "channel_id": doc.get("channel_id"),
        "direction": doc.get("direction"),
        "status": entry.get("status"),
        "attempt": entry.get("attempt"),
        "provider_message_id": entry.get("provider_message_id") or doc.get("provider_message_id"),
        "error": entry.get("error"),
        "context": doc.get("context") or {},
        "tags": doc.get("tags") or [],
    }
    if entry["type"] == "message.retrying":
        data["next_attempt_at"] = entry.get("next_attempt_at")
        if entry.get("failover"):
            data["failover"] = entry["failover"]
    if entry["type"] == "message.fallback":
        data["fallback_id"] = entry.get("fallback_id")
    if doc.get("direction") == "inbound":
        content = doc.get("content")
        omitted = content is not None and len(orjson.dumps(content)) > MAX_EVENT_CONTENT
        data.update(
            sender=doc.get("sender"),
            receiver=doc.get("receiver"),
            content=None if omitted else content,
            subject=doc.get("subject"),
        )
        if omitted:
            data["content_omitted"] = True
    return {
        "id": entry["id"],
        "type": entry["type"],
        "timestamp": entry["at"],
        "tenant_id": doc["tenant_id"],
        "data": data,
    }
