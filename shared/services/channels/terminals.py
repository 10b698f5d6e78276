"""Terminals: register, read, change and remove a tenant's sender identities, and the
set a channel may send as (cached for the send path)."""

from __future__ import annotations

from shared.containers import TERMINALS
from shared.domain.errors import ConflictError, NotFoundError
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.terminals import (
    Senders,
    TerminalCreate,
    TerminalUpdate,
    checked_address,
    sending_identities,
    terminal_key,
)
from shared.ports import Conflict, Filter, NotFound, Page, Query
from shared.services.channels.channels import get_channel
from shared.services.deps import Deps
from shared.services.pages import every_page, in_creation_order

INTERNAL_FIELDS = ("_etag", "tenant_id", "key")
SCAN_PAGE = 1000


def public(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


async def create_terminal(deps: Deps, tenant_id: str, data: TerminalCreate) -> Document:
    channel = await get_channel(deps, tenant_id, data.channel)
    spec = deps.catalog.resolve(channel["type"], channel["provider"])
    address = checked_address(data.type, data.address, spec.sender_types)
    now = to_utc_text(deps.clock.now())
    doc: Document = {
        "id": new_id("trm"),
        "tenant_id": tenant_id,
        "channel": channel["name"],
        "channel_id": channel["id"],
        "type": data.type,
        "address": address,
        "key": terminal_key(channel["id"], data.type, address),
        "display_name": data.display_name,
        "role": data.role,
        "status": data.status,
        "created_at": now,
        "updated_at": now,
    }
    try:
        written = await deps.store.create(TERMINALS, doc)
    except Conflict:
        raise ConflictError(
            f"{address!r} ({data.type}) is registered on {channel['name']!r} already",
            code="TERMINAL_EXISTS",
        ) from None
    forget(deps, written)
    return written


async def get_terminal(deps: Deps, tenant_id: str, terminal_id: str) -> Document:
    doc = await deps.store.read(TERMINALS, tenant_id, terminal_id)
    if doc is None:
        raise _not_found(terminal_id)
    return doc


async def list_terminals(
    deps: Deps, tenant_id: str, *, channel: str | None, limit: int, cursor: str | None
) -> Page:
    where: tuple[Filter, ...] = ()
    if channel is not None:
        channel_id = (await get_channel(deps, tenant_id, channel))["id"]
        where = (Filter("channel_id", "eq", channel_id),)
    return await in_creation_order(
        deps.store, TERMINALS, tenant_id, where=where, limit=limit, cursor=cursor
    )


async def update_terminal(
    deps: Deps, tenant_id: str, terminal_id: str, data: TerminalUpdate
) -> Document:
    changes = {
        field: value
        for field, value in data.model_dump(exclude_unset=True).items()
        if value is not None or field == "display_name"
    }
    if not changes:
        return await get_terminal(deps, tenant_id, terminal_id)
    changes["updated_at"] = to_utc_text(deps.clock.now())
    try:
        written = await deps.store.patch(TERMINALS, tenant_id, terminal_id, changes)
    except NotFound:
        raise _not_found(terminal_id) from None
    forget(deps, written)
    return written


async def delete_terminal(deps: Deps, tenant_id: str, terminal_id: str) -> Document:
    """Remove a terminal; returns what was removed."""
    doc = await get_terminal(deps, tenant_id, terminal_id)
    if not await deps.store.delete(TERMINALS, tenant_id, terminal_id):
        raise _not_found(terminal_id)
    forget(deps, doc)
    return doc


async def active_senders(deps: Deps, tenant_id: str, channel_id: str) -> Senders:
    """The ``(type, address)`` a channel may send as (``("email", "@domain")`` for a
    domain); cached briefly, dropped on every change through this instance."""
    cached = await deps.lookups.get(
        (TERMINALS, tenant_id, channel_id), lambda: _load_senders(deps, tenant_id, channel_id)
    )
    senders: Senders = cached["senders"] if cached else frozenset()
    return senders


async def _load_senders(deps: Deps, tenant_id: str, channel_id: str) -> Document:
    # Always a document, so a channel with no terminals is cached too.
    query = Query(scope=tenant_id, where=(Filter("channel_id", "eq", channel_id),), limit=SCAN_PAGE)
    found: set[tuple[str, str]] = set()
    async for page in every_page(deps.store, TERMINALS, query):
        found |= sending_identities(page)
    return {"senders": frozenset(found)}


def forget(deps: Deps, doc: Document) -> None:
    """Drop the channel's cached senders after any write to one of its terminals."""
    deps.lookups.forget((TERMINALS, doc["tenant_id"], doc["channel_id"]))


def _not_found(terminal_id: str) -> NotFoundError:
    return NotFoundError(f"No terminal {terminal_id!r}", code="TERMINAL_NOT_FOUND")
