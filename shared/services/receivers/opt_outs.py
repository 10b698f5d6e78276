"""Opt-outs: add, remove and check the receivers a tenant may not send to.

Every check is a point read by a derived id (see shared.domain.opt_outs); nothing is
cached, so an opt-out holds from the moment it is written, on every instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from shared.containers import OPT_OUTS
from shared.domain.errors import FieldError, NotFoundError, ValidationFailed
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.opt_outs import (
    OPT_OUT_TYPES,
    OptOutReason,
    lookup_address,
    normalise_receiver,
    opt_out_id,
)
from shared.ports import Conflict, Filter, Page
from shared.services.deps import Deps
from shared.services.pages import in_creation_order

PUBLIC_FIELDS = ("id", "channel_type", "address", "reason", "source", "created_at")
CONCURRENT_READS = 32
"""Point reads in flight at once for a batch: fast, yet gentle on Cosmos DB's RUs."""


def public(doc: Document) -> Document:
    return {k: doc.get(k) for k in PUBLIC_FIELDS}


async def add(
    deps: Deps,
    tenant_id: str,
    channel_type: str,
    address: str,
    reason: OptOutReason,
    **source: Any,
) -> Document:
    """Opt a receiver out (idempotent: an existing opt-out is kept as it was)."""
    kind = _known_type(channel_type)
    normal = normalise_receiver(kind, address)
    if normal is None:
        raise ValidationFailed(
            f"Not a valid {kind} receiver address",
            errors=[FieldError("address", "not a valid address for this channel type")],
        )
    doc: Document = {
        "id": opt_out_id(tenant_id, kind, normal),
        "tenant_id": tenant_id,
        "channel_type": kind,
        "address": normal,
        "reason": reason,
        "source": {k: str(v) for k, v in source.items() if v is not None},
        "created_at": to_utc_text(deps.clock.now()),
    }
    try:
        return await deps.store.create(OPT_OUTS, doc)
    except Conflict:
        existing = await deps.store.read(OPT_OUTS, tenant_id, doc["id"])
        # Removed in between: write ours after all.
        return existing if existing is not None else await deps.store.upsert(OPT_OUTS, doc)


async def opt_out_receiver(
    deps: Deps,
    doc: MessageDocument,
    channel_type: str,
    reason: OptOutReason,
    provider_status: Any = None,
) -> None:
    """Opt a message's receiver out because its provider refused them for good (a
    bounce, a complaint, STOP before the send): the message is the source."""
    receiver = doc.get("receiver")
    if receiver is not None:
        await add(
            deps,
            doc["tenant_id"],
            channel_type,
            receiver["address"],
            reason,
            message_id=doc["id"],
            provider_status=provider_status,
        )


async def remove(deps: Deps, tenant_id: str, channel_type: str, address: str) -> bool:
    """Opt a receiver back in; False if it was not opted out."""
    return await deps.store.delete(OPT_OUTS, tenant_id, _id(tenant_id, channel_type, address))


async def find(deps: Deps, tenant_id: str, channel_type: str, address: str) -> Document | None:
    return await deps.store.read(OPT_OUTS, tenant_id, _id(tenant_id, channel_type, address))


async def get_opt_out(deps: Deps, tenant_id: str, channel_type: str, address: str) -> Document:
    doc = await find(deps, tenant_id, channel_type, address)
    if doc is None:
        raise _not_found()
    return doc


async def delete_opt_out(deps: Deps, tenant_id: str, channel_type: str, address: str) -> str:
    """Remove an opt-out; returns its id, or OPT_OUT_NOT_FOUND."""
    doc_id = _id(tenant_id, channel_type, address)
    if not await deps.store.delete(OPT_OUTS, tenant_id, doc_id):
        raise _not_found()
    return doc_id


async def is_opted_out(deps: Deps, tenant_id: str, channel_type: str, address: str) -> bool:
    """One point read."""
    return await find(deps, tenant_id, channel_type, address) is not None


async def opted_out(
    deps: Deps, tenant_id: str, channel_type: str, addresses: Iterable[str]
) -> set[str]:
    """Which of ``addresses`` (as given) are opted out: one point read per distinct
    address, a bounded number at once."""
    by_id: dict[str, list[str]] = {}
    for address in dict.fromkeys(addresses):
        by_id.setdefault(_id(tenant_id, channel_type, address), []).append(address)
    pending = list(by_id.items())
    found: set[str] = set()
    for start in range(0, len(pending), CONCURRENT_READS):
        chunk = pending[start : start + CONCURRENT_READS]
        docs = await asyncio.gather(*(deps.store.read(OPT_OUTS, tenant_id, i) for i, _ in chunk))
        for (_, given), doc in zip(chunk, docs, strict=True):
            if doc is not None:
                found.update(given)
    return found


async def list_opt_outs(
    deps: Deps, tenant_id: str, *, channel_type: str | None, limit: int, cursor: str | None
) -> Page:
    where = () if channel_type is None else (Filter("channel_type", "eq", channel_type.lower()),)
    return await in_creation_order(
        deps.store, OPT_OUTS, tenant_id, where=where, limit=limit, cursor=cursor
    )


def _id(tenant_id: str, channel_type: str, address: str) -> str:
    kind = channel_type.lower()
    return opt_out_id(tenant_id, kind, lookup_address(kind, address))


def _known_type(channel_type: str) -> str:
    kind = channel_type.lower()
    if kind not in OPT_OUT_TYPES:
        raise ValidationFailed(
            f"Receivers opt out of {', '.join(sorted(OPT_OUT_TYPES))} messages; "
            f"not {channel_type!r} (its receivers unsubscribe on their side)",
            code="CHANNEL_TYPE_UNKNOWN",
            errors=[FieldError("channel_type", "not a channel type with opt-outs")],
        )
    return kind


def _not_found() -> NotFoundError:
    return NotFoundError("That receiver has not opted out", code="OPT_OUT_NOT_FOUND")
