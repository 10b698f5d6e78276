"""Ports: the small interfaces the services depend on; adapters implement them.

Every adapter of a port passes the same contract suite (tests/contract/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.domain.channels import ProviderSpec
from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.domain.models import Document

# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------


class SystemScope:
    """An explicit marker for the few sweeps that read across every tenant."""

    _instance: SystemScope | None = None

    def __new__(cls) -> SystemScope:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemScope()
Scope = str | SystemScope


class StoreError(Exception):
    """Base class of the document store's expected failures."""


class Conflict(StoreError):
    """A document with that id (or that unique key) already exists."""


class PreconditionFailed(StoreError):
    """The etag given no longer matches the stored document."""


class NotFound(StoreError):
    """The document does not exist (or belongs to another partition)."""


class InvalidCursor(StoreError, ValueError):
    """A pagination cursor that this store did not issue for this query."""


class MessageLockLost(Exception):
    """The peek-lock of a received queue message expired or was settled already."""


FilterOp = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in"]


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition on a top-level or dotted field (``"dispatch.enqueued"``)."""

    field: str
    op: FilterOp
    value: Any


@dataclass(frozen=True, slots=True)
class Query:
    """A query inside one tenant (``scope``) or, for sweeps, across all (``SYSTEM``).

    Results are ordered by ``order_by`` then by ``id`` (same direction), so keyset
    pagination is stable. ``cursor`` is the opaque ``next_cursor`` of a previous page.
    """

    scope: Scope
    where: tuple[Filter, ...] = ()
    order_by: str = "id"
    descending: bool = False
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Document]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What a container holds and which fields are queried (adapters index them).

    ``unique`` lists fields unique within a tenant (a missing/None value is not
    checked), like a Cosmos unique-key policy on a partition. ``swept`` lists
    fields that system-scope sweeps range over across all tenants; they are
    usually unset, so adapters index only documents where they are set.
    ``sparse`` fields are indexed like ``indexed`` ones but only where set
    (looked up by value, never listed in order).

    ``ordered`` lists the fields queries order by (besides ``id``); stores that
    need an index per ordering (Cosmos DB's composite indexes) build one each and
    refuse other orderings.

    ``partition_key`` names the document fields a partitioned store (Cosmos DB)
    keys the container by, outermost first: ``("tenant_id",)`` keeps a tenant's
    documents in one logical partition (small containers that need per-tenant
    unique fields); ``("tenant_id", "id")`` is a hierarchical key that never caps
    a tenant at one partition's size while a point read still needs only the
    tenant and the id; ``("id",)`` serves lookups by id alone (the Directory).
    """

    name: str
    indexed: tuple[str, ...] = ()
    sparse: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    swept: tuple[str, ...] = ()
    ordered: tuple[str, ...] = ()
    partition_key: tuple[str, ...] = ("tenant_id",)

    @property
    def queryable(self) -> frozenset[str]:
        """The fields a query may filter or order on: what some index serves."""
        return frozenset(
            (
                "id",
                "tenant_id",
                *self.indexed,
                *self.sparse,
                *self.swept,
                *self.unique,
                *self.ordered,
            )
        )

    def check_query(self, query: Query) -> None:
        """Refuse a query no index serves (Cosmos DB would scan every document of
        the partition for it); every store applies the same rule."""
        unserved = sorted({f.field for f in query.where} - self.queryable)
        if unserved:
            raise ValueError(f"{self.name} has no index for {', '.join(unserved)}")
        if query.order_by != "id" and query.order_by not in self.ordered:
            raise ValueError(f"{self.name} is not indexed for ordering by {query.order_by!r}")

    def __post_init__(self) -> None:
        if not self.partition_key or any(f not in ("tenant_id", "id") for f in self.partition_key):
            raise ValueError("a partition key is made of tenant_id and/or id")
        if self.unique and self.partition_key != ("tenant_id",):
            raise ValueError("unique fields need the tenant as the whole partition key")


class DocumentStore(Protocol):
    """JSON documents in named containers, partitioned by tenant.

    Every document has ``id`` (globally unique) and ``tenant_id``; adapters add
    ``_etag`` on every read and write. ``ttl`` (seconds) on a document makes it
    expire, as in Cosmos DB.
    """

    async def create(self, container: str, doc: Document) -> Document: ...

    async def create_many(self, container: str, docs: Sequence[Document]) -> None:
        """Create many documents in one go; all-or-nothing where the backend can."""
        ...

    async def read(self, container: str, scope: Scope, doc_id: str) -> Document | None:
        """Point read. With a tenant scope, another tenant's document reads as None;
        ``SYSTEM`` reads by id alone (the Directory, tenants)."""
        ...

    async def replace(
        self, container: str, doc: Document, *, etag: str | None = None
    ) -> Document: ...

    async def upsert(self, container: str, doc: Document) -> Document: ...

    async def patch(
        self,
        container: str,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> Document:
        """Set top-level or dotted fields; raises NotFound or PreconditionFailed."""
        ...

    async def patch_many(
        self,
        container: str,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
    ) -> int:
        """Bulk patch ``(tenant_id, id, changes, etag)`` items, each on its own:
        an item whose document is missing or whose etag is stale is skipped.
        Returns how many were applied (not atomic as a whole)."""
        ...

    async def delete(
        self, container: str, tenant_id: str, doc_id: str, *, etag: str | None = None
    ) -> bool: ...

    async def query(self, container: str, query: Query) -> Page: ...

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        """Atomically add ``by`` to the top-level integer ``field`` of the document,
        creating it (with that ``ttl``) if missing; returns the new value. Counters
        shared by every instance (rate limits, quotas) use it; they are keyed by their
        window, so the ttl only cleans up (it runs from creation on SQLite, from the
        last add on Cosmos DB)."""
        ...


# ---------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to put on a queue or topic.

    ``message_id`` drives duplicate detection: a second message with the same id
    inside the detection window is dropped silently.
    """

    message_id: str
    body: bytes
    scheduled_at: datetime | None = None
    subject: str | None = None
    application_properties: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    body: bytes
    delivery_count: int
    lock_token: str
    enqueued_at: datetime
    subject: str | None = None
    application_properties: Mapping[str, str | int] = field(default_factory=dict)
    dead_letter_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic subscription. With ``only``, it keeps the messages whose application
    property ``only[0]`` is one of ``only[1]`` — a Service Bus SQL filter rule
    ``<property> IN (...)`` — and the others never reach it."""

    name: str
    only: tuple[str, tuple[str, ...]] | None = None

    def accepts(self, message: OutgoingMessage) -> bool:
        return self.takes(message.application_properties)

    def takes(self, application_properties: Mapping[str, str | int]) -> bool:
        """Whether a message with these application properties passes the rule."""
        if self.only is None:
            return True
        field, values = self.only
        return application_properties.get(field) in values


def reaches_anyone(
    topics: Mapping[str, Sequence[Subscription]],
    entity: str,
    application_properties: Mapping[str, str | int],
) -> bool:
    """Whether a message sent to ``entity`` lands anywhere: a queue always, a topic
    if one of its subscriptions takes it."""
    subs = topics.get(entity)
    return subs is None or any(s.takes(application_properties) for s in subs)


def subscribers(
    topics: Mapping[str, Sequence[Subscription]], entity: str, message: OutgoingMessage
) -> list[str]:
    """The entities a message sent to ``entity`` lands in: itself for a queue, the
    subscriptions that accept it for a topic."""
    subs = topics.get(entity)
    if subs is None:
        return [entity]
    return [f"{entity}/subscriptions/{s.name}" for s in subs if s.accepts(message)]


class Queue(Protocol):
    """Service Bus semantics: at-least-once, peek-lock, delivery count, dead-letter
    after ``max_delivery_count``, scheduled enqueue, duplicate detection by id.

    Entity names: a queue ``q``, a topic subscription ``topic/subscriptions/sub``,
    and the dead-letter sub-queue of either ``<entity>/$DeadLetterQueue``.
    """

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None: ...

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        """Whether a message with these properties sent to ``entity`` would land in any
        queue or subscription, so a sender may skip building one nobody receives.
        True when the adapter cannot tell (Service Bus: its broker applies the rules)."""
        ...

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]: ...

    async def complete(self, entity: str, message: ReceivedMessage) -> None: ...

    async def abandon(self, entity: str, message: ReceivedMessage) -> None: ...

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None: ...


# ---------------------------------------------------------------------------
# Secrets, clock, ids
# ---------------------------------------------------------------------------


class SecretStore(Protocol):
    async def set(self, name: str, value: str) -> None: ...

    async def get(self, name: str) -> str | None: ...

    async def delete(self, name: str) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a provider needs to send one message (one attempt)."""

    tenant_id: str
    message: Document
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


__all__ = [
    "SYSTEM",
    "CallbackInvalid",
    "CallbackRejected",
    "CallbackReply",
    "CallbackRequest",
    "Callbacks",
    "Clock",
    "Conflict",
    "ContainerSpec",
    "DocumentStore",
    "Filter",
    "InvalidCursor",
    "NotFound",
    "OutgoingMessage",
    "Page",
    "PreconditionFailed",
    "ProviderEnv",
    "ProviderError",
    "ProviderEvent",
    "ProviderModule",
    "Query",
    "Queue",
    "ReceivedMessage",
    "Scope",
    "SecretStore",
    "SendRequest",
    "SendResult",
    "Sender",
    "StoreError",
    "Subscription",
    "SystemScope",
]
