"""The provider ports: a provider's outbound side (Sender), its inbound side
(Callbacks) and the module that brings both."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.domain.channels import ProviderSpec
from shared.domain.message_document import MessageDocument
from shared.domain.models import Document
from shared.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a provider needs to send one message (one attempt)."""

    tenant_id: str
    message: MessageDocument
    channel: Document
    credentials: Mapping[str, str]
    attempt: int
    throttles: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A later event from a provider (delivery receipt or inbound message) to be
    fed back through the provider-events queue; ``deliver_at`` delays it."""

    kind: Literal["receipt", "inbound"]
    payload: Mapping[str, Any]
    deliver_at: datetime | None = None


def receipt(
    event_id: str,
    status: str | None,
    provider_status: str,
    *,
    provider_message_id: str | None = None,
    message_id: str | None = None,
    error_code: str | None = None,
    error_reason: str | None = None,
    opt_out: str | None = None,
    deliver_at: datetime | None = None,
    **owner: str,
) -> ProviderEvent:
    """A delivery receipt, in the one shape ``shared.services.delivery.receipts``
    applies: the provider's own event id (a repeat changes nothing), our status and
    theirs (None: it only opts the receiver out), the message (by our id or the
    provider's), why it failed, and whether the receiver is gone for good (``opt_out``);
    what else is not known is left out."""
    known = {
        "provider_message_id": provider_message_id,
        "message_id": message_id,
        "error_code": error_code,
        "error_reason": error_reason,
        "opt_out": opt_out,
    }
    payload = {
        **owner,
        "event_id": event_id,
        "status": status,
        "provider_status": provider_status,
        **{k: v for k, v in known.items() if v is not None},
    }
    return ProviderEvent(kind="receipt", payload=payload, deliver_at=deliver_at)


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str | None
    followups: tuple[ProviderEvent, ...] = ()


class Sender(Protocol):
    """One provider's outbound side.

    ``send`` returns a SendResult or raises ``ProviderError`` (transient,
    throttled or permanent); it never raises anything else on purpose.
    """

    async def send(self, request: SendRequest) -> SendResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A provider's call to ``/api/v1/callbacks/{provider}/{channel_id}``, as received.

    ``url`` is the URL the provider called (``OCM_PUBLIC_BASE_URL`` + path + query
    when that is set), the one URL-covering signatures are computed over;
    ``headers`` have lower-case names; ``query`` keeps repeated keys.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    body: bytes

    def query_value(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass(frozen=True, slots=True)
class CallbackReply:
    """What a callback produced: events to apply, and the answer the provider expects.

    Receipt payloads carry ``event_id``, ``provider_message_id``, ``status`` (an
    OCM status: sent, delivered, read, failed — or None for an event that only
    records an opt-out), ``provider_status`` and, on failure, ``error_code`` and
    ``error_reason``; ``opt_out`` ("bounce", "complaint", "unsubscribe") adds the
    message's receiver to the tenant's opt-out list. Inbound payloads carry
    ``event_id``, ``provider_message_id``, ``sender`` and ``receiver`` (terminal
    dicts), ``content`` (a content dict), optional ``subject`` and ``received_at``.
    The callback service adds ``tenant_id`` and ``channel_id``.
    """

    events: tuple[ProviderEvent, ...] = ()
    status_code: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


class Callbacks(Protocol):
    """One provider's inbound side. ``verify`` runs first and alone on the raw
    request (raising ``CallbackRejected``); only then is ``parse`` called (raising
    ``CallbackInvalid`` for a verified but malformed request)."""

    def verify(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> None: ...

    def parse(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> CallbackReply: ...


@dataclass(frozen=True, slots=True)
class ProviderEnv:
    """What a provider module gets to build its sender."""

    clock: Clock
    allow_private_egress: bool
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderModule:
    """A provider: its specs (one per channel type it serves), how to build its
    sender, and its callbacks (None when it sends none)."""

    name: str
    specs: tuple[ProviderSpec, ...]
    build: Callable[[ProviderEnv], Sender]
    callbacks: Callbacks | None = None
