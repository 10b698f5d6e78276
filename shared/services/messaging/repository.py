"""The messages container, typed: every read and write of a message document goes
through here, so everything above sees a ``MessageDocument``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from shared.containers import MESSAGES
from shared.domain.message_document import MessageDocument, as_document, as_message
from shared.domain.models import Document
from shared.ports import Filter, Query
from shared.services import concurrency
from shared.services.concurrency import Keep, Tries, Updated
from shared.services.deps import Deps
from shared.services.events import publish
from shared.services.events.interest import interest

T = TypeVar("T")
Change = Callable[[MessageDocument], Awaitable[T | Keep[T]]]


async def read(deps: Deps, tenant_id: str, message_id: str) -> MessageDocument | None:
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    return None if doc is None else as_message(doc)


async def create(deps: Deps, doc: MessageDocument) -> MessageDocument:
    return as_message(await deps.store.create(MESSAGES, as_document(doc)))


async def create_many(deps: Deps, docs: Sequence[MessageDocument]) -> None:
    await deps.store.create_many(MESSAGES, cast(Sequence[Document], docs))


async def replace(deps: Deps, doc: MessageDocument, etag: str | None = None) -> MessageDocument:
    return as_message(await deps.store.replace(MESSAGES, as_document(doc), etag=etag))


def forget_unreceived_events(
    deps: Deps, doc: MessageDocument, webhooks: frozenset[str] = frozenset()
) -> None:
    """Drop the pending events of a document that no subscriber but analytics would
    receive (an events topic with only a failures log, say), so it is written without
    an events outbox mark — one index entry fewer, and no clear to write after the
    hand-off. Those analytics takes are kept in ``fresh_events``: the hand-off after
    this write publishes them once, unmarked (``publish.guaranteed``)."""
    pending = doc.get("pending_events")
    if not pending:
        return
    types = {e.get("id"): e["type"] for e in doc.get("events", ())}
    tenant_id = doc["tenant_id"]
    kept: list[str] = []
    fresh: list[str] = []
    for eid in pending:
        if publish.guaranteed(deps, tenant_id, types[eid], webhooks):
            kept.append(eid)
        elif publish.route(deps, tenant_id, types[eid], webhooks) is not None:
            fresh.append(eid)
    if fresh:
        doc["fresh_events"] = fresh
    if len(kept) < len(pending):
        doc["pending_events"] = kept
        if not kept:
            doc["events_at"] = None


async def update(
    deps: Deps,
    tenant_id: str,
    message_id: str,
    change: Change[T],
    tries: Tries,
    *,
    first: MessageDocument | None = None,
) -> Updated[MessageDocument, T] | None:
    """``concurrency.update`` of one message (None: there is no such message), with
    ``received_only``."""
    changed = await received_only(deps, tenant_id, change)
    return await concurrency.update(
        deps.store, MESSAGES, lambda: read(deps, tenant_id, message_id), changed, tries, first=first
    )


async def received_only(deps: Deps, tenant_id: str, change: Change[T]) -> Change[T]:
    """The change, then its events that nobody subscribes to dropped before the
    write, so the hand-off after it has nothing to clear (a patch per status change
    fewer, for a tenant without webhooks)."""
    webhooks = await interest(deps, tenant_id)

    async def changed(doc: MessageDocument) -> T | Keep[T]:
        doc.pop("fresh_events", None)  # the previous write's, published after it
        outcome = await change(doc)
        if not isinstance(outcome, Keep):
            forget_unreceived_events(deps, doc, webhooks)
        return outcome

    return changed


async def find(deps: Deps, query: Query) -> list[MessageDocument]:
    """One page of messages (sweeps and lookups: no cursor kept)."""
    return cast(list[MessageDocument], (await deps.store.query(MESSAGES, query)).items)


async def by_provider_id(
    deps: Deps, tenant_id: str, channel_id: str, provider_message_id: str
) -> MessageDocument | None:
    """The message a provider knows by its own id, on one channel."""
    where = (
        Filter("channel_id", "eq", channel_id),
        Filter("provider_message_id", "eq", provider_message_id),
    )
    found = await find(deps, Query(scope=tenant_id, where=where, limit=1))
    return found[0] if found else None
