"""Documents in Cosmos DB (NoSQL API, async client): the DocumentStore port.

Containers are made by Terraform (infra/) from the same layout as
``cosmos_layout.layout``; the Function App's identity has data-plane access only,
so this adapter never creates or alters them (``create_containers`` is for local
servers and emulators).

What differs from the embedded store, by Cosmos DB's design (documented on the
port): ids are unique per partition, so a clash across tenants is not detected
(ids are globally unique ULIDs by construction); ``create_many`` across
partitions is not one transaction, so a failed batch deletes what it created;
expired documents vanish on Cosmos's schedule but are never read (``ttl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosHttpResponseError

from shared.adapters.azure.cosmos_layout import CosmosContainer, layout, unique_property
from shared.adapters.documents import apply_changes, check_name, decode_cursor, encode_cursor
from shared.domain.models import Document
from shared.ports import (
    SYSTEM,
    Conflict,
    ContainerSpec,
    Filter,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Scope,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_SYSTEM_PROPERTIES = ("_rid", "_self", "_attachments", "_ts", "_etag", "_lsn")
_COMPARISONS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
MAX_PATCH_OPERATIONS = 10  # Cosmos DB's limit per patch request
_UNSET = "\u0000"  # prefix of a unique property's value when its field is unset


class CosmosMeter:
    """Operations and request units (RU) per ``operation:container``, from the
    ``x-ms-request-charge`` header of every response (docs/cost.md uses it)."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.request_units: dict[str, float] = defaultdict(float)

    def hook(self, operation: str, container: str) -> Callable[[Mapping[str, Any], Any], None]:
        key = f"{operation}:{container}"

        def record(headers: Mapping[str, Any], _result: Any) -> None:
            charge = float(headers.get("x-ms-request-charge") or 0)
            self.operations[key] += 1
            self.request_units[key] += charge
            log.debug("cosmos %s %.2f RU", key, charge)

        return record


def build_cosmos_client(endpoint: str, credential: str | AsyncTokenCredential) -> CosmosClient:
    """A client by identity (``DefaultAzureCredential`` in Azure), or by account key
    for a local server or emulator. A plain-http endpoint (a local server) turns
    endpoint discovery off, since it has no regional endpoints."""
    options: dict[str, Any] = {}
    if endpoint.lower().startswith("http://"):
        options["enable_endpoint_discovery"] = False
    return CosmosClient(endpoint, credential=credential, **options)


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


class _Container:
    """One container: its spec, layout and client."""

    def __init__(self, spec: ContainerSpec, client: ContainerProxy) -> None:
        self.spec = spec
        self.shape: CosmosContainer = layout(spec)
        self.client = client
        self.by_id_alone = spec.partition_key == ("id",)

    def key(self, tenant_id: str, doc_id: str) -> Any:
        values = [tenant_id if f == "tenant_id" else doc_id for f in self.spec.partition_key]
        return values[0] if len(values) == 1 else values


class CosmosDocumentStore:
    """The DocumentStore port over one Cosmos DB database."""

    def __init__(
        self,
        database: DatabaseProxy,
        containers: Sequence[ContainerSpec],
        *,
        meter: CosmosMeter | None = None,
        concurrency: int = 32,
    ) -> None:
        self._containers = {
            spec.name: _Container(spec, database.get_container_client(spec.name))
            for spec in containers
        }
        self.meter = meter or CosmosMeter()
        self._concurrency = concurrency

    # --- writes -------------------------------------------------------------------

    async def create(self, container: str, doc: Document) -> Document:
        c = self._container(container)
        body = self._body(c, doc)
        created = await _call(
            c.client.create_item(body, response_hook=self.meter.hook("create", container))
        )
        return _load(created)

    async def create_many(self, container: str, docs: Sequence[Document]) -> None:
        """Creates concurrently; if any fails, deletes the ones that were created and
        raises that failure (all-or-nothing, short of a crash in between)."""
        c = self._container(container)
        bodies = [self._body(c, doc) for doc in docs]
        results = await self._bounded(
            [
                _call(c.client.create_item(b, response_hook=self.meter.hook("create", container)))
                for b in bodies
            ]
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return
        created = [
            b for b, r in zip(bodies, results, strict=True) if not isinstance(r, BaseException)
        ]
        undo = await self._bounded(
            [self._delete_quietly(c, b["tenant_id"], b["id"]) for b in created]
        )
        for outcome in undo:
            if isinstance(outcome, BaseException):
                log.error("could not undo part of a failed batch in %s", container)
        raise failures[0]

    async def replace(self, container: str, doc: Document, *, etag: str | None = None) -> Document:
        c = self._container(container)
        body = self._body(c, doc)
        if not c.by_id_alone:
            return await self._replace(c, body, etag)
        # Keyed by id alone, another tenant's document sits in the same partition:
        # replace only the version this tenant's read found (retried if it moved on
        # meanwhile, unless the caller asked for a version of its own).
        for _ in range(5):
            owned = await self._owned_etag(c, body["tenant_id"], body["id"], etag)
            try:
                return await self._replace(c, body, owned)
            except PreconditionFailed:
                if etag is not None:
                    raise
        raise PreconditionFailed(f"{container}/{body['id']} keeps changing")

    async def upsert(self, container: str, doc: Document) -> Document:
        c = self._container(container)
        body = self._body(c, doc)
        if not c.by_id_alone:
            upserted = await _call(
                c.client.upsert_item(body, response_hook=self.meter.hook("upsert", container))
            )
            return _load(upserted)
        # Keyed by id alone: create, or replace the version this tenant owns, so a
        # write racing another tenant's create cannot overwrite it.
        for _ in range(5):
            current = await self._read(c, body["id"], body["id"])
            if current is not None and current["tenant_id"] != body["tenant_id"]:
                raise Conflict(f"{container}/{body['id']} belongs to another tenant")
            try:
                if current is None:
                    created = await _call(
                        c.client.create_item(
                            body, response_hook=self.meter.hook("create", container)
                        )
                    )
                    return _load(created)
                return await self._replace(c, body, current["_etag"])
            except (Conflict, PreconditionFailed, NotFound):
                continue  # someone wrote in between: look again
        raise PreconditionFailed(f"{container}/{body['id']} keeps changing")

    async def _replace(self, c: _Container, body: Document, etag: str | None) -> Document:
        try:
            replaced = await _call(
                c.client.replace_item(
                    body["id"],
                    body,
                    **_condition(etag),
                    response_hook=self.meter.hook("replace", c.spec.name),
                )
            )
        except NotFound:
            raise NotFound(f"{c.spec.name}/{body['id']}") from None
        return _load(replaced)

    async def patch(
        self,
        container: str,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> Document:
        c = self._container(container)
        apply_changes({}, changes)  # refuses id, tenant_id and _etag before any call
        # Cosmos's patch cannot create a missing parent object, so a dotted path
        # (none on the services' hot paths) reads, changes and replaces instead.
        native = not c.by_id_alone and all("." not in path for path in changes)
        if native and len(changes) + len(c.spec.unique) <= MAX_PATCH_OPERATIONS:
            operations = [
                {"op": "set", "path": f"/{path}", "value": value} for path, value in changes.items()
            ]
            operations += [
                {
                    "op": "set",
                    "path": f"/{unique_property(f)}",
                    "value": _unique(changes[f], doc_id),
                }
                for f in c.spec.unique
                if f in changes
            ]
            patched = await _call(
                c.client.patch_item(
                    doc_id,
                    c.key(tenant_id, doc_id),
                    operations,
                    **_condition(etag),
                    response_hook=self.meter.hook("patch", container),
                )
            )
            return _load(patched)
        return await self._read_modify_replace(c, tenant_id, doc_id, changes, etag)

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
        c = self._container(container)
        try:
            if c.by_id_alone:
                etag = await self._owned_etag(c, tenant_id, doc_id, etag)
            await _call(
                c.client.delete_item(
                    doc_id,
                    c.key(tenant_id, doc_id),
                    **_condition(etag),
                    response_hook=self.meter.hook("delete", container),
                )
            )
        except NotFound:
            return False
        return True

    # --- reads --------------------------------------------------------------------

    async def read(self, container: str, scope: Scope, doc_id: str) -> Document | None:
        c = self._container(container)
        if scope is SYSTEM and not c.by_id_alone:
            page = await self._select(c, "c.id = @id", {"@id": doc_id}, None, 1, "id", False)
            return page[0] if page else None
        key = doc_id if c.by_id_alone else c.key(str(scope), doc_id)
        doc = await self._read(c, doc_id, key)
        if doc is None or (scope is not SYSTEM and doc["tenant_id"] != scope):
            return None
        return doc

    async def query(self, container: str, query: Query) -> Page:
        if query.limit < 1:
            raise ValueError("limit must be at least 1")
        c = self._container(container)
        c.spec.check_query(query)
        params: dict[str, Any] = {}
        where: list[str] = []
        partition: Any = None
        if query.scope is not SYSTEM:
            where.append("c.tenant_id = @tenant")
            params["@tenant"] = query.scope
            if c.spec.partition_key[0] == "tenant_id":
                # A prefix of a hierarchical key keeps the query in the tenant's partitions.
                multi = len(c.spec.partition_key) > 1
                partition = [query.scope] if multi else query.scope
        for i, f in enumerate(query.where):
            where.append(_condition_sql(f, f"@p{i}", params))
        branches: list[tuple[str, dict[str, Any]]] = [("true", {})]
        if query.cursor is not None:
            value, last_id = decode_cursor(query.cursor, query.order_by)
            branches = _after_cursor(_field(query.order_by), query.descending, value, last_id)
        found: list[Document] = []
        for sql, values in branches:
            if len(found) > query.limit:
                break
            found += await self._select(
                c,
                " AND ".join([*where, sql]),
                {**params, **values},
                partition,
                query.limit + 1 - len(found),
                query.order_by,
                query.descending,
            )
        more = len(found) > query.limit
        found = found[: query.limit]
        cursor = None
        if more:
            last = found[-1]
            cursor = encode_cursor(query.order_by, _value(last, query.order_by), last["id"])
        return Page(found, cursor)

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        """Cosmos's atomic ``incr`` patch; a missing counter is created, and a create
        that loses a race to another instance's becomes an increment."""
        c = self._container(container)
        if c.by_id_alone:
            raise ValueError("counters live in containers keyed by tenant")
        key = c.key(tenant_id, doc_id)
        for _ in range(3):
            try:
                patched = await _call(
                    c.client.patch_item(
                        doc_id,
                        key,
                        [{"op": "incr", "path": f"/{field}", "value": by}],
                        response_hook=self.meter.hook("increment", container),
                    )
                )
                return int(patched[field])
            except NotFound:
                pass
            body = {"id": doc_id, "tenant_id": tenant_id, field: by, "ttl": ttl}
            try:
                await _call(
                    c.client.create_item(body, response_hook=self.meter.hook("create", container))
                )
                return by
            except Conflict:
                continue
        raise PreconditionFailed(f"{container}/{doc_id} could not be counted")

    async def close(self) -> None:
        """Nothing of its own: the client is closed by whoever built it."""

    # --- internals ----------------------------------------------------------------

    def _container(self, name: str) -> _Container:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}") from None

    def _body(self, c: _Container, doc: Document) -> Document:
        doc_id, tenant_id = doc.get("id"), doc.get("tenant_id")
        if not isinstance(doc_id, str) or not isinstance(tenant_id, str):
            raise ValueError("a document needs a string id and tenant_id")
        body = {k: v for k, v in doc.items() if k != "_etag"}
        for f in c.spec.unique:
            body[unique_property(f)] = _unique(_value(body, f), doc_id)
        return body

    async def _read(self, c: _Container, doc_id: str, key: Any) -> Document | None:
        try:
            item = await _call(
                c.client.read_item(doc_id, key, response_hook=self.meter.hook("read", c.spec.name))
            )
        except NotFound:
            return None
        return _load(item)

    async def _owned_etag(
        self, c: _Container, tenant_id: str, doc_id: str, etag: str | None
    ) -> str:
        """For containers keyed by id alone: the tenant's document's etag (the one
        given, if it still matches), so the write that follows cannot touch another
        tenant's document or a newer version."""
        current = await self._read(c, doc_id, doc_id)
        if current is None or current["tenant_id"] != tenant_id:
            raise NotFound(f"{c.spec.name}/{doc_id}")
        if etag is not None and current["_etag"] != etag:
            raise PreconditionFailed(f"{c.spec.name}/{doc_id} has changed")
        current_etag: str = current["_etag"]
        return current_etag

    async def _read_modify_replace(
        self,
        c: _Container,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        etag: str | None,
    ) -> Document:
        for _ in range(5):
            current = await self._read(c, doc_id, c.key(tenant_id, doc_id))
            if current is None or current["tenant_id"] != tenant_id:
                raise NotFound(f"{c.spec.name}/{doc_id}")
            if etag is not None and current["_etag"] != etag:
                raise PreconditionFailed(f"{c.spec.name}/{doc_id} has changed")
            apply_changes(current, changes)
            try:
                return await self._replace(c, self._body(c, current), current["_etag"])
            except PreconditionFailed:
                if etag is not None:
                    raise
        raise PreconditionFailed(f"{c.spec.name}/{doc_id} keeps changing")

    async def _delete_quietly(self, c: _Container, tenant_id: str, doc_id: str) -> None:
        with contextlib.suppress(NotFound):
            await _call(
                c.client.delete_item(
                    doc_id,
                    c.key(tenant_id, doc_id),
                    response_hook=self.meter.hook("delete", c.spec.name),
                )
            )

    async def _select(
        self,
        c: _Container,
        where: str,
        params: Mapping[str, Any],
        partition: Any,
        top: int,
        order_by: str,
        descending: bool,
    ) -> list[Document]:
        direction = "DESC" if descending else "ASC"
        order = f"c.id {direction}"
        if order_by != "id":
            order = f"{_field(order_by)} {direction}, {order}"
        sql = f"SELECT TOP {int(top)} * FROM c WHERE {where} ORDER BY {order}"  # noqa: S608
        options: dict[str, Any] = {"max_item_count": min(top, 1000)}
        if partition is not None:
            options["partition_key"] = partition
        items = c.client.query_items(
            sql,
            parameters=[{"name": k, "value": v} for k, v in params.items()],
            response_hook=self.meter.hook("query", c.spec.name),
            **options,
        )
        found: list[Document] = []
        try:
            async for item in items:
                found.append(_load(item))
                if len(found) >= top:
                    break
        except CosmosHttpResponseError as exc:
            raise _translated(exc) from exc
        return found

    async def _bounded(self, calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        return await asyncio.gather(*(one(call) for call in calls), return_exceptions=True)


# --- helpers ----------------------------------------------------------------------------


async def _call(operation: Awaitable[T]) -> T:
    """Await one SDK call, with its failures as the port's exceptions."""
    try:
        return await operation
    except CosmosHttpResponseError as exc:
        raise _translated(exc) from exc


def _translated(exc: CosmosHttpResponseError) -> Exception:
    status = exc.status_code
    if status == 404:
        return NotFound("not found")
    if status == 409:
        return Conflict("a document with that id or unique value exists")
    if status == 412:
        return PreconditionFailed("the document has changed")
    if status == 400:
        return ValueError(f"Cosmos DB refused the request: {exc.message}")
    return exc


def _condition(etag: str | None) -> dict[str, Any]:
    if etag is None:
        return {}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _load(item: Mapping[str, Any]) -> Document:
    doc = {
        k: v for k, v in item.items() if k not in _SYSTEM_PROPERTIES and not k.startswith("uq__")
    }
    doc["_etag"] = item["_etag"]
    return doc


def _value(doc: Mapping[str, Any], field: str) -> Any:
    node: Any = doc
    for part in field.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _unique(value: Any, doc_id: str) -> Any:
    return _UNSET + doc_id if value is None else value


def _field(name: str) -> str:
    parts = [check_name(p) for p in name.split(".")]
    return "c" + "".join(f'["{p}"]' for p in parts)


def _is_null(expr: str) -> str:
    return f"(NOT IS_DEFINED({expr}) OR IS_NULL({expr}))"


def _condition_sql(f: Filter, name: str, params: dict[str, Any]) -> str:
    """One filter as Cosmos SQL; a missing field counts as null, as in the other
    stores, and ``ne`` is exactly the negation of ``eq``."""
    expr = _field(f.field)
    if f.op in ("eq", "ne"):
        if f.value is None:
            sql = _is_null(expr)
        else:
            params[name] = f.value
            sql = f"(IS_DEFINED({expr}) AND {expr} = {name})"
        return sql if f.op == "eq" else f"NOT {sql}"
    if f.op == "in":
        values = [v for v in f.value if v is not None]
        parts = []
        if values:
            names = [f"{name}_{i}" for i in range(len(values))]
            params.update(zip(names, values, strict=True))
            parts.append(f"{expr} IN ({', '.join(names)})")
        if len(values) < len(f.value):
            parts.append(_is_null(expr))
        return f"({' OR '.join(parts) or 'false'})"
    if f.value is None:
        raise ValueError(f"{f.op} needs a value")
    params[name] = f.value
    return f"{expr} {_COMPARISONS[f.op]} {name}"


def _after_cursor(
    expr: str, descending: bool, value: Any, doc_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """The documents after a cursor, as branches read in turn (null sorts first)."""
    null, set_ = _is_null(expr), f"NOT {_is_null(expr)}"
    after_id = {"@after_id": doc_id}
    if value is None:
        if descending:
            return [(f"{null} AND c.id < @after_id", after_id)]
        return [(f"{null} AND c.id > @after_id", after_id), (set_, {})]
    cursor = {"@after_value": value, **after_id}
    if descending:
        return [
            (
                f"({expr} < @after_value OR ({expr} = @after_value AND c.id < @after_id))",
                cursor,
            ),
            (null, {}),
        ]
    return [(f"({expr} > @after_value OR ({expr} = @after_value AND c.id > @after_id))", cursor)]
