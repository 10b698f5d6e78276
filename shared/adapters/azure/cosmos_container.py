"""One Cosmos DB container as the document store reads and writes it, and the SDK's
answers in the port's terms: its errors as the port's exceptions, its items as
documents without Cosmos's system properties or the stored unique values."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.cosmos.aio import ContainerProxy
from azure.cosmos.exceptions import CosmosBatchOperationError, CosmosHttpResponseError

from shared.adapters.azure.cosmos_layout import unique_property
from shared.adapters.documents import check_partition, transaction_key
from shared.domain.models import Document
from shared.ports import (
    BatchFailed,
    Conflict,
    ContainerSpec,
    NotFound,
    PreconditionFailed,
    StoreError,
    Throttled,
    Write,
    partition_of,
)

T = TypeVar("T")
ResponseHook = Callable[[Mapping[str, Any], Any], None]

THROTTLED = frozenset({408, 429, 503})
"""Request timeout, too many requests, service unavailable: come back later."""
_SYSTEM_PROPERTIES = ("_rid", "_self", "_attachments", "_ts", "_etag", "_lsn")
_UNSET = "\u0000"  # prefix of a unique property's value when its field is unset


class Container:
    """One container: its spec and client, and ``hooks(operation, container)``, the
    response hook that meters each call."""

    def __init__(
        self,
        spec: ContainerSpec,
        client: ContainerProxy,
        hooks: Callable[[str, str], ResponseHook],
    ) -> None:
        self.spec = spec
        self.client = client
        self.by_id_alone = spec.partition_key == ("id",)
        self._hooks = hooks

    def key(self, tenant_id: str, doc_id: str) -> Any:
        """The partition key value of a document."""
        if self.spec.partition_key[-1] == "partition":
            return [tenant_id, partition_of(doc_id)]
        values = [tenant_id if f == "tenant_id" else doc_id for f in self.spec.partition_key]
        return values[0] if len(values) == 1 else values

    def hook(self, operation: str) -> ResponseHook:
        """The response hook that meters one ``operation`` on this container."""
        return self._hooks(operation, self.spec.name)

    def body(self, doc: Document) -> Document:
        """The item to write: the document without its etag, with its unique values."""
        doc_id, tenant_id = doc.get("id"), doc.get("tenant_id")
        if not isinstance(doc_id, str) or not isinstance(tenant_id, str):
            raise ValueError("a document needs a string id and tenant_id")
        check_partition(self.spec, doc)
        body = {k: v for k, v in doc.items() if k != "_etag"}
        for f in self.spec.unique:
            body[unique_property(f)] = unique_value(field_value(body, f), doc_id)
        return body

    async def create(self, body: Document) -> Document:
        """Create the item; Conflict if its id or a unique value is taken."""
        return to_document(
            await call(self.client.create_item(body, response_hook=self.hook("create")))
        )

    async def read(self, doc_id: str, key: Any) -> Document | None:
        """The document, or None if there is none."""
        try:
            item = await call(self.client.read_item(doc_id, key, response_hook=self.hook("read")))
        except NotFound:
            return None
        return to_document(item)

    async def replace(self, body: Document, etag: str | None) -> Document:
        """Replace the document (only the version ``etag`` names, if given)."""
        try:
            replaced = await call(
                self.client.replace_item(
                    body["id"],
                    body,
                    **etag_condition(etag),
                    response_hook=self.hook("replace"),
                )
            )
        except NotFound:
            raise NotFound(f"{self.spec.name}/{body['id']}") from None
        return to_document(replaced)

    async def delete(self, tenant_id: str, doc_id: str, etag: str | None = None) -> None:
        """Delete the document (only the version ``etag`` names, if given)."""
        await call(
            self.client.delete_item(
                doc_id,
                self.key(tenant_id, doc_id),
                **etag_condition(etag),
                response_hook=self.hook("delete"),
            )
        )

    async def delete_quietly(self, tenant_id: str, doc_id: str) -> None:
        """Delete the document if it is there."""
        with contextlib.suppress(NotFound):
            await self.delete(tenant_id, doc_id)

    async def owned_etag(self, tenant_id: str, doc_id: str, etag: str | None) -> str:
        """For containers keyed by id alone: the tenant's document's etag (the one
        given, if it still matches), so the write that follows cannot touch another
        tenant's document or a newer version."""
        current = await self.read(doc_id, doc_id)
        if current is None or current["tenant_id"] != tenant_id:
            raise NotFound(f"{self.spec.name}/{doc_id}")
        if etag is not None and current["_etag"] != etag:
            raise PreconditionFailed(f"{self.spec.name}/{doc_id} has changed")
        current_etag: str = current["_etag"]
        return current_etag

    async def transact(self, writes: Sequence[Write]) -> list[Document]:
        """One transactional batch (Cosmos DB applies all of it or none); a failed
        operation comes back as BatchFailed with the port's error for its status."""
        tenant_id, _ = transaction_key(self.spec, writes)
        operations: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for write in writes:
            body = self.body(write.doc)
            if write.kind == "replace":
                condition = {"if_match_etag": write.etag} if write.etag else {}
                operations.append(("replace", (body["id"], body), condition))
            else:
                operations.append((write.kind, (body,), {}))
        try:
            results = await call(
                self.client.execute_item_batch(
                    operations,
                    partition_key=self.key(tenant_id, writes[0].doc["id"]),
                    response_hook=self.hook("transact"),
                )
            )
        except CosmosBatchOperationError as exc:
            cause = translated_status(exc.status_code or 0)
            raise BatchFailed(exc.error_index or 0, cause) from exc
        for write in writes:  # each operation counted as its kind (the batch has the RU)
            self.hook(write.kind)({}, None)
        return [to_document(result["resourceBody"]) for result in results]


async def call(operation: Awaitable[T]) -> T:
    """Await one SDK call, with its failures as the port's exceptions."""
    try:
        return await operation
    except CosmosHttpResponseError as exc:
        raise translated(exc) from exc


def translated_status(status: int) -> StoreError:
    """The port's error for a failed write's status (a transaction's operations)."""
    if status == 404:
        return NotFound("not found")
    if status == 409:
        return Conflict("a document with that id or unique value exists")
    if status == 412:
        return PreconditionFailed("the document has changed")
    return StoreError(f"Cosmos DB answered {status}")


def translated(exc: CosmosHttpResponseError) -> Exception:
    """The port's exception for a Cosmos DB error (the error itself if none fits)."""
    status = exc.status_code
    if status in (404, 409, 412):
        return translated_status(status)
    if status == 400:
        return ValueError(f"Cosmos DB refused the request: {exc.message}")
    if status in THROTTLED:
        # What is left after the SDK's own retries of 429 (nine, within 30 s).
        advice = (exc.headers or {}).get("x-ms-retry-after-ms")
        seconds = int(advice) / 1000 if advice and str(advice).isdigit() else None
        return Throttled(f"Cosmos DB answered {status}", seconds)
    return exc


def etag_condition(etag: str | None) -> dict[str, Any]:
    """The SDK's keyword arguments for a write of only the version ``etag`` names."""
    if etag is None:
        return {}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def to_document(item: Mapping[str, Any]) -> Document:
    """An item as the port's document: its fields and its etag."""
    doc = {
        k: v for k, v in item.items() if k not in _SYSTEM_PROPERTIES and not k.startswith("uq__")
    }
    doc["_etag"] = item["_etag"]
    return doc


def field_value(doc: Mapping[str, Any], field: str) -> Any:
    """A top-level or dotted field's value; None if it is unset."""
    node: Any = doc
    for part in field.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def unique_value(value: Any, doc_id: str) -> Any:
    """What a unique property stores: the value, or one of the document's own if unset."""
    return _UNSET + doc_id if value is None else value
