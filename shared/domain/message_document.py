"""The stored message document, typed: every field the services read or write, so a
misspelt key or a wrong type is a ``mypy --strict`` error rather than a silent bug.

It is a ``TypedDict`` — the stored JSON itself, with no conversion on the way in or
out (intake builds a thousand per batch, and a model would cost each a parse) — and
the fields are the ones documents have always had: nothing to migrate. The public
fields are the API's message; the internal ones (``INTERNAL_FIELDS``) are the
document's own bookkeeping: its outboxes (``dispatch``/``outbox_at``,
``pending_events``/``events_at``), the dispatch claim, receipt dedupe, failover state.
"""

from __future__ import annotations

from typing import Any, Literal, Required, TypedDict, cast

from shared.domain.models import Document

Direction = Literal["outbound", "inbound"]


class Party(TypedDict, total=False):
    """A sender or receiver: ``{"type": "email", "address": …, "display_name"?: …}``."""

    type: Required[str]
    address: Required[str]
    display_name: str


class ErrorInfo(TypedDict, total=False):
    """Why a message failed (or an attempt, or a fallback)."""

    code: Required[str]
    reason: Required[str]
    permanent: Required[bool]
    provider_status: Any


class TimelineEntry(TypedDict, total=False):
    """One entry of a message's timeline: an event (with its deterministic ``id``,
    published once) or a ``status.ignored`` note (no id, never published)."""

    id: str
    type: Required[str]
    status: str
    at: Required[str]
    attempt: int
    provider_message_id: str
    error: ErrorInfo
    source: str
    next_attempt_at: str
    failover: dict[str, str]
    fallback_id: str


class DispatchSlot(TypedDict):
    """The one dispatch job the message expects next (see ``shared.domain.jobs``)."""

    job: str
    attempt: int
    due_at: str


class Claim(TypedDict):
    """A dispatch in progress: which job holds the message, since when."""

    job: str
    at: str


class MessageDocument(TypedDict, total=False):
    id: Required[str]
    tenant_id: Required[str]
    direction: Required[Direction]
    status: Required[str]
    channel: str
    channel_id: str
    channel_type: str
    provider: str
    app_id: str
    """The application (credential) that sent it: an analytics dimension."""
    receiver: Party | None
    sender: Party | None
    content: dict[str, Any]
    subject: str | None
    context: dict[str, Any]
    options: dict[str, Any]
    tags: list[str]
    send_at: str | None
    expires_at: str | None
    max_attempts: int
    attempts: int
    throttles: int
    holds: int
    provider_message_id: str | None
    error: ErrorInfo | None
    batch_id: str | None
    parent_id: str
    received_at: str
    created_at: str
    updated_at: str
    # what the send rules add
    template: dict[str, Any]
    segments: int
    email_headers: dict[str, str]
    # the timeline and its outbox
    events: list[TimelineEntry]
    pending_events: list[str]
    events_at: str | None
    fresh_events: list[str]
    """Events of the last write that only analytics takes: published once after it,
    unmarked (``events.publish.guaranteed``)."""
    # the dispatch job's outbox, and dispatch's own state
    dispatch: DispatchSlot
    outbox_at: str | None
    claim: Claim | None
    traceparent: str
    receipt_ids: list[str]
    channel_failures: int
    channels_tried: list[str]
    origin_channel: str
    origin_provider: str
    origin_sender: Party | None
    # fallback
    fallback: dict[str, Any]
    fallback_after: float
    fallback_id: str
    fallback_step: int
    """0 for a client's message, n for the n-th fallback after it."""
    fallback_error: ErrorInfo
    # the store's own
    _etag: str


INTERNAL_FIELDS = frozenset(
    {
        "_etag",
        "tenant_id",
        "dispatch",
        "outbox_at",
        "events_at",
        "pending_events",
        "fresh_events",
        "app_id",
        "channel_type",
        "fallback_step",
        "claim",
        "receipt_ids",
        "traceparent",
        "channel_failures",
    }
)
"""Fields the API never shows."""


def receiver_of(doc: MessageDocument) -> Party:
    """An outbound message's receiver (intake accepts none without one)."""
    receiver = doc.get("receiver")
    if receiver is None:
        raise ValueError(f"the message {doc['id']} has no receiver")
    return receiver


def as_message(doc: Document) -> MessageDocument:
    """A stored document of the messages container, as what it is."""
    return cast(MessageDocument, doc)


def as_document(doc: MessageDocument) -> Document:
    """A message document, as the store takes any document."""
    return cast(Document, doc)
