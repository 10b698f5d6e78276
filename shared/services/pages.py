"""Paginated listing shared by every list use case."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from shared.domain.errors import FieldError, OcmError
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import DocumentStore, Filter, InvalidCursor, Page, Query


async def list_page(store: DocumentStore, container: str, query: Query) -> Page:
    """One page of a tenant's documents; a cursor we did not issue is a 400."""
    try:
        return await store.query(container, query)
    except InvalidCursor:
        raise OcmError(
            "The cursor is not valid for this list; start again without it",
            code="INVALID_CURSOR",
            status=400,
            errors=[FieldError("cursor", "not a cursor this list issued")],
        ) from None


async def in_creation_order(
    store: DocumentStore,
    container: str,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None,
    where: Sequence[Filter] = (),
    newest_first: bool = False,
) -> Page:
    """One page of a tenant's documents in the order they were created."""
    query = Query(
        scope=tenant_id,
        where=tuple(where),
        order_by="created_at",
        descending=newest_first,
        limit=limit,
        cursor=cursor,
    )
    return await list_page(store, container, query)


def created_between(since: datetime | None, until: datetime | None) -> list[Filter]:
    """Filters on when documents were created: from ``since`` on, before ``until``."""
    where = []
    if since is not None:
        where.append(Filter("created_at", "gte", to_utc_text(since)))
    if until is not None:
        where.append(Filter("created_at", "lt", to_utc_text(until)))
    return where


async def every_page(
    store: DocumentStore, container: str, query: Query
) -> AsyncIterator[list[Document]]:
    """Every page of a query, one after the other (for what must see them all)."""
    while True:
        page = await store.query(container, query)
        yield page.items
        if page.next_cursor is None:
            return
        query = dataclasses.replace(query, cursor=page.next_cursor)
