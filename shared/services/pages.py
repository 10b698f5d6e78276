"""Paginated listing shared by every list use case."""

from __future__ import annotations

from shared.domain.errors import FieldError, OcmError
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
