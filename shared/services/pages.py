"""Paginated listing shared by every list use case."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from shared.domain.errors import FieldError, OcmError
from shared.domain.models import Document
from shared.ports import DocumentStore, InvalidCursor, Page, Query


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
