"""The document store port: JSON documents in tenant-partitioned containers, the
queries they answer and the failures they report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.domain.models import Document


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


class BatchFailed(StoreError):
    """A transaction (``DocumentStore.transact``) changed nothing because the write
    at ``index`` failed with ``cause`` (Conflict, PreconditionFailed, NotFound)."""

    def __init__(self, index: int, cause: StoreError) -> None:
        super().__init__(f"write {index} of the transaction failed: {cause}")
        self.index = index
        self.cause = cause


MAX_TRANSACTION_WRITES = 100
"""Cosmos DB's limit on the operations of one transactional batch."""


@dataclass(frozen=True, slots=True)
class Write:
    """One write of a transaction: ``create`` (fails if the id exists), ``replace``
    (fails if the document is missing or, with ``etag``, has changed), ``upsert``."""

    kind: Literal["create", "replace", "upsert"]
    doc: Document
    etag: str | None = None


def partition_of(doc_id: str) -> str:
    """The ``partition`` key part of a document in a container keyed by it: the id
    up to its first ``|`` (``2026-12-07|msg_1:sent`` is in partition ``2026-12-07``)."""
    head, bar, _ = doc_id.partition("|")
    if not bar or not head:
        raise ValueError(f"{doc_id!r} names no partition (the id must start with one and |)")
    return head


class InvalidCursor(StoreError, ValueError):
    """A pagination cursor that this store did not issue for this query."""


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
    tenant and the id; ``("id",)`` serves lookups by id alone (the Directory);
    ``("tenant_id", "partition")`` groups a tenant's documents by the part of their
    id before its first ``|`` (``partition_of``), which every document also carries
    as its ``partition`` field: what one transaction (``transact``) may span.
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
        by_partition = self.partition_key == ("tenant_id", "partition")
        by_ids = bool(self.partition_key) and all(
            f in ("tenant_id", "id") for f in self.partition_key
        )
        if not (by_partition or by_ids):
            raise ValueError(
                'a partition key is made of tenant_id and/or id, or is ("tenant_id", "partition")'
            )
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

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        """All of ``writes`` or none (at most MAX_TRANSACTION_WRITES), in one logical
        partition: the same tenant and, in a container keyed by ``partition``, the
        same partition (ValueError otherwise). Returns the written documents with
        their new etags, in order; raises BatchFailed naming the first write that
        failed, having written nothing (Cosmos DB's transactional batch)."""
        ...

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        """Atomically add ``by`` to the top-level integer ``field`` of the document,
        creating it (with that ``ttl``) if missing; returns the new value. Counters
        shared by every instance (rate limits, quotas) use it; they are keyed by their
        window, so the ttl only cleans up (it runs from creation on SQLite, from the
        last add on Cosmos DB)."""
        ...
