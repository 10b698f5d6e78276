"""Documents in Cosmos DB (NoSQL API, async client): the DocumentStore port.

Containers are made by Terraform (infra/) from the same layout as
``cosmos_layout.layout``; the Function App's identity has data-plane access only,
so this adapter never creates or alters them (``create_containers`` is for local
servers and emulators).

What differs from the embedded store, by Cosmos DB's design (documented on the
port): ids are unique per partition (ours are globally unique ULIDs); ``create_many``
across partitions is not one transaction, so a failed batch deletes what it created
(``transact``, one partition, is); expired documents vanish on Cosmos's schedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient, DatabaseProxy

from shared.adapters.azure.cosmos_container import Container, ResponseHook, call, to_document
from shared.adapters.azure.cosmos_endpoint import client_options
from shared.adapters.azure.cosmos_layout import CosmosContainer, layout
from shared.adapters.azure.cosmos_patch import increment_counter, patch_document
from shared.adapters.azure.cosmos_query import query_page, select
from shared.domain.models import Document
from shared.ports import (
    SYSTEM,
    Conflict,
    ContainerSpec,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Scope,
    Write,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class CosmosMeter:
    """Operations and request units (RU) per ``operation:container``, from the
    ``x-ms-request-charge`` header of every response (docs/cost.md uses it)."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.request_units: dict[str, float] = defaultdict(float)

    def hook(self, operation: str, container: str) -> ResponseHook:
        key = f"{operation}:{container}"

        def record(headers: Mapping[str, Any], _result: Any) -> None:
            charge = float(headers.get("x-ms-request-charge") or 0)
            self.operations[key] += 1
            self.request_units[key] += charge
            log.debug("cosmos %s %.2f RU", key, charge)

        return record


def build_cosmos_client(endpoint: str, credential: str | AsyncTokenCredential) -> CosmosClient:
    """A client by identity (``DefaultAzureCredential`` in Azure), or by account key
    for a local server or emulator, with ``client_options``: Session consistency; no
    endpoint discovery for a local endpoint (plain http, or this machine); no TLS
    verification for https on localhost/127.0.0.1 (the emulator's own certificate)."""
    return CosmosClient(endpoint, credential=credential, **client_options(endpoint))


async def create_containers(
    database: DatabaseProxy,
    specs: Sequence[ContainerSpec],
    *,
    indexing_policy: Callable[[CosmosContainer], dict[str, Any]] | None = None,
) -> None:
    """Create missing containers as Terraform would (local servers and emulators);
    ``indexing_policy`` lets a test set-up adapt the policy to a local server."""
    for spec in specs:
        shape = layout(spec)
        await database.create_container_if_not_exists(
            id=shape.name,
            partition_key=_partition_key(shape),
            indexing_policy=(indexing_policy or _policy)(shape),
            unique_key_policy=shape.unique_key_policy(),
            default_ttl=shape.default_ttl,
        )


def _policy(shape: CosmosContainer) -> dict[str, Any]:
    return shape.indexing_policy


def _partition_key(shape: CosmosContainer) -> PartitionKey:
    """The layout's partition key definition, as the SDK takes it."""
    definition = shape.partition_key()
    paths = definition["paths"]
    if definition["kind"] == "MultiHash":
        return PartitionKey(path=paths, kind="MultiHash", version=definition["version"])
    return PartitionKey(path=paths[0], kind="Hash", version=definition["version"])


class CosmosDocumentStore:
    """The DocumentStore port over one Cosmos DB database."""

    def __init__(
        self,
        database: DatabaseProxy,
        containers: Sequence[ContainerSpec],
        *,
        meter: CosmosMeter | None = None,
        concurrency: int = 32,
        client: CosmosClient | None = None,
    ) -> None:
        self.meter = meter or CosmosMeter()
        # Only entering the async client (__aenter__ → _setup) sets its consistency
        # header and session container: no session token is sent before.
        self.client = client
        self._open = client is None
        self._opening = asyncio.Lock()  # bound to a loop on first use, not here
        self._containers = {
            spec.name: Container(spec, database.get_container_client(spec.name), self.meter.hook)
            for spec in containers
        }
        self._concurrency = concurrency

    # --- writes -------------------------------------------------------------------

    async def create(self, container: str, doc: Document) -> Document:
        c = await self._ready(container)
        return await c.create(c.body(doc))

    async def create_many(self, container: str, docs: Sequence[Document]) -> None:
        """Creates concurrently; if any fails, deletes the ones that were created and
        raises that failure (all-or-nothing, short of a crash in between)."""
        c = await self._ready(container)
        bodies = [c.body(doc) for doc in docs]
        results = await self._bounded([c.create(b) for b in bodies])
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return
        created = [
            b for b, r in zip(bodies, results, strict=True) if not isinstance(r, BaseException)
        ]
        undo = await self._bounded([c.delete_quietly(b["tenant_id"], b["id"]) for b in created])
        for outcome in undo:
            if isinstance(outcome, BaseException):
                log.error("could not undo part of a failed batch in %s", container)
        raise failures[0]

    async def replace(self, container: str, doc: Document, *, etag: str | None = None) -> Document:
        c = await self._ready(container)
        body = c.body(doc)
        if not c.by_id_alone:
            return await c.replace(body, etag)
        # Keyed by id alone, another tenant's document sits in the same partition:
        # replace only the version this tenant's read found (retried if it moved on
        # meanwhile, unless the caller asked for a version of its own).
        for _ in range(5):
            owned = await c.owned_etag(body["tenant_id"], body["id"], etag)
            try:
                return await c.replace(body, owned)
            except PreconditionFailed:
                if etag is not None:
                    raise
        raise PreconditionFailed(f"{container}/{body['id']} keeps changing")

    async def upsert(self, container: str, doc: Document) -> Document:
        c = await self._ready(container)
        body = c.body(doc)
        if not c.by_id_alone:
            upserted = await call(c.client.upsert_item(body, response_hook=c.hook("upsert")))
            return to_document(upserted)
        # Keyed by id alone: create, or replace the version this tenant owns, so a
        # write racing another tenant's create cannot overwrite it.
        for _ in range(5):
            current = await c.read(body["id"], body["id"])
            if current is not None and current["tenant_id"] != body["tenant_id"]:
                raise Conflict(f"{container}/{body['id']} belongs to another tenant")
            try:
                if current is None:
                    return await c.create(body)
                return await c.replace(body, current["_etag"])
            except (Conflict, PreconditionFailed, NotFound):
                continue  # someone wrote in between: look again
        raise PreconditionFailed(f"{container}/{body['id']} keeps changing")

    async def patch(
        self,
        container: str,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> Document:
        return await patch_document(await self._ready(container), tenant_id, doc_id, changes, etag)

    async def patch_many(
        self,
        container: str,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
    ) -> int:
        """Each item on its own, concurrently; repeated ids are applied in turn."""
        by_id: dict[str, list[tuple[str, str, Mapping[str, Any], str | None]]] = defaultdict(list)
        for item in items:
            by_id[item[1]].append(item)

        async def in_turn(group: list[tuple[str, str, Mapping[str, Any], str | None]]) -> int:
            applied = 0
            for tenant_id, doc_id, changes, etag in group:
                try:
                    await self.patch(container, tenant_id, doc_id, changes, etag=etag)
                except (NotFound, PreconditionFailed, Conflict):
                    continue
                applied += 1
            return applied

        results = await self._bounded([in_turn(group) for group in by_id.values()])
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return sum(r for r in results if isinstance(r, int))

    async def delete(
        self, container: str, tenant_id: str, doc_id: str, *, etag: str | None = None
    ) -> bool:
        c = await self._ready(container)
        try:
            if c.by_id_alone:
                etag = await c.owned_etag(tenant_id, doc_id, etag)
            await c.delete(tenant_id, doc_id, etag)
        except NotFound:
            return False
        return True

    # --- reads --------------------------------------------------------------------

    async def read(self, container: str, scope: Scope, doc_id: str) -> Document | None:
        c = await self._ready(container)
        if scope is SYSTEM and not c.by_id_alone:
            page = await select(c, "c.id = @id", {"@id": doc_id}, None, 1, "id", False)
            return page[0] if page else None
        key = doc_id if c.by_id_alone else c.key(str(scope), doc_id)
        doc = await c.read(doc_id, key)
        if doc is None or (scope is not SYSTEM and doc["tenant_id"] != scope):
            return None
        return doc

    async def query(self, container: str, query: Query) -> Page:
        if query.limit < 1:
            raise ValueError("limit must be at least 1")
        return await query_page(await self._ready(container), query)

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        return await (await self._ready(container)).transact(writes)

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        """Cosmos's atomic ``incr`` patch; a missing counter is created, and a create
        that loses a race to another instance's becomes an increment."""
        return await increment_counter(
            await self._ready(container), tenant_id, doc_id, field, by, ttl
        )

    async def close(self) -> None:
        """Nothing of its own: the client is closed by whoever built it."""

    # --- internals ----------------------------------------------------------------

    async def _ready(self, name: str) -> Container:
        """The container, once the client is open (entered on first use, in its loop)."""
        if not self._open:
            async with self._opening:
                if not self._open and self.client is not None:
                    await self.client.__aenter__()
                self._open = True
        return self._container(name)

    def _container(self, name: str) -> Container:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}") from None

    async def _bounded(self, calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        return await asyncio.gather(*(one(call) for call in calls), return_exceptions=True)
