"""Patches and counters in Cosmos DB: its partial document update where it can
serve, a read-modify-replace where it cannot, and atomic increments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.azure.cosmos_container import (
    Container,
    call,
    etag_condition,
    to_document,
    unique_value,
)
from shared.adapters.azure.cosmos_layout import unique_property
from shared.adapters.documents import apply_changes
from shared.domain.models import Document
from shared.ports import Conflict, NotFound, PreconditionFailed

MAX_PATCH_OPERATIONS = 10  # Cosmos DB's limit per patch request


async def patch_document(
    c: Container,
    tenant_id: str,
    doc_id: str,
    changes: Mapping[str, Any],
    etag: str | None,
) -> Document:
    """Set the changed fields of one document (only the version ``etag`` names, if
    given), its unique values with them."""
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
                "value": unique_value(changes[f], doc_id),
            }
            for f in c.spec.unique
            if f in changes
        ]
        patched = await call(
            c.client.patch_item(
                doc_id,
                c.key(tenant_id, doc_id),
                operations,
                **etag_condition(etag),
                response_hook=c.hook("patch"),
            )
        )
        return to_document(patched)
    return await _read_modify_replace(c, tenant_id, doc_id, changes, etag)


async def _read_modify_replace(
    c: Container,
    tenant_id: str,
    doc_id: str,
    changes: Mapping[str, Any],
    etag: str | None,
) -> Document:
    for _ in range(5):
        current = await c.read(doc_id, c.key(tenant_id, doc_id))
        if current is None or current["tenant_id"] != tenant_id:
            raise NotFound(f"{c.spec.name}/{doc_id}")
        if etag is not None and current["_etag"] != etag:
            raise PreconditionFailed(f"{c.spec.name}/{doc_id} has changed")
        apply_changes(current, changes)
        try:
            return await c.replace(c.body(current), current["_etag"])
        except PreconditionFailed:
            if etag is not None:
                raise
    raise PreconditionFailed(f"{c.spec.name}/{doc_id} keeps changing")


async def increment_counter(
    c: Container, tenant_id: str, doc_id: str, field: str, by: int, ttl: int
) -> int:
    """The counter's value after adding ``by``, created (with ``ttl``) if missing."""
    if c.by_id_alone:
        raise ValueError("counters live in containers keyed by tenant")
    key = c.key(tenant_id, doc_id)
    for _ in range(3):
        try:
            patched = await call(
                c.client.patch_item(
                    doc_id,
                    key,
                    [{"op": "incr", "path": f"/{field}", "value": by}],
                    response_hook=c.hook("increment"),
                )
            )
            return int(patched[field])
        except NotFound:
            pass
        try:
            await c.create({"id": doc_id, "tenant_id": tenant_id, field: by, "ttl": ttl})
            return by
        except Conflict:
            continue
    raise PreconditionFailed(f"{c.spec.name}/{doc_id} could not be counted")
