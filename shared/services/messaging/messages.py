"""A message once accepted: its public view, read, listed, cancelled; and the pending
messages of a deleted channel, failed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.containers import MESSAGES
from shared.domain.errors import ConflictError, NotFoundError
from shared.domain.message_document import INTERNAL_FIELDS, MessageDocument
from shared.domain.models import Document
from shared.domain.status import PENDING
from shared.domain.timeline import change_status, error_info
from shared.ports import Filter, Page, PreconditionFailed, Query
from shared.services import concurrency
from shared.services.channels import channels as channel_service
from shared.services.deps import Deps
from shared.services.messaging import outbox, repository
from shared.services.pages import created_between, in_creation_order


def public(doc: Mapping[str, Any]) -> Document:
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


async def get_message(deps: Deps, tenant_id: str, message_id: str) -> MessageDocument:
    doc = await repository.read(deps, tenant_id, message_id)
    if doc is None:
        raise _not_found(message_id)
    return doc


def _not_found(message_id: str) -> NotFoundError:
    return NotFoundError(f"No message {message_id!r}", code="MESSAGE_NOT_FOUND")


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: str | None = None
    channel: str | None = None
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_messages(
    deps: Deps, tenant_id: str, flt: MessageFilter, *, limit: int, cursor: str | None
) -> Page:
    where: list[Filter] = []
    if flt.status:
        where.append(Filter("status", "eq", flt.status))
    if flt.channel:
        channel = await channel_service.find_by_name(deps, tenant_id, flt.channel)
        if channel is None:
            return Page(items=[], next_cursor=None)
        where.append(Filter("channel_id", "eq", channel["id"]))
    if flt.direction:
        # Inbound messages, and only they, are "received": the status index serves
        # the direction too, sparing every message write one more index entry.
        op: Literal["eq", "ne"] = "eq" if flt.direction == "inbound" else "ne"
        where.append(Filter("status", op, "received"))
    where += created_between(flt.since, flt.until)
    return await in_creation_order(
        deps.store, MESSAGES, tenant_id, where=where, newest_first=True, limit=limit, cursor=cursor
    )


async def cancel_message(deps: Deps, tenant_id: str, message_id: str) -> Document:
    """Cancel a scheduled or queued message; its queued job is then ignored."""

    async def cancel(doc: MessageDocument) -> None:
        if doc["status"] not in PENDING:
            raise ConflictError(
                f"Only scheduled or queued messages can be cancelled; this one is {doc['status']}",
                code="MESSAGE_NOT_CANCELLABLE",
            )
        change_status(doc, "cancelled", deps.clock.now())

    current = await get_message(deps, tenant_id, message_id)
    tries = concurrency.for_request("The message changed while cancelling")
    done = await repository.update(deps, tenant_id, message_id, cancel, tries, first=current)
    if done is None or done.doc is None:  # cancel always writes; None: gone meanwhile
        raise _not_found(message_id)
    await outbox.hand_off(deps, [done.doc])
    return public(done.doc)


PENDING_SWEEP_LIMIT = 1000


async def delete_channel(deps: Deps, tenant_id: str, name: str) -> int:
    """Delete a channel: new sends stop at once, and its pending messages fail with
    CHANNEL_DELETED.

    Dispatch refuses any message of a deleted channel, so pending messages beyond
    this sweep fail when due. Returns how many pending messages were failed here.
    """
    channel = await channel_service.retire_channel(deps, tenant_id, name)
    return await fail_pending_messages(deps, tenant_id, channel["id"])


async def fail_pending_messages(deps: Deps, tenant_id: str, channel_id: str) -> int:
    where = (
        Filter("channel_id", "eq", channel_id),
        Filter("status", "in", ["scheduled", "queued"]),
    )
    pending = await repository.find(
        deps, Query(scope=tenant_id, where=where, limit=PENDING_SWEEP_LIMIT)
    )
    failed = 0
    for msg in pending:
        error = error_info("CHANNEL_DELETED", "The channel was deleted", permanent=True)
        if not change_status(msg, "failed", deps.clock.now(), error=error):
            continue
        try:
            written = await repository.replace(deps, msg, etag=msg["_etag"])
        except PreconditionFailed:
            continue  # dispatch got there first; it will see the channel is deleted
        await outbox.hand_off(deps, [written])
        failed += 1
    return failed
