"""Accept outbound messages (one or a batch), read, list and cancel them.

Accepting never calls a provider: it validates, persists the message with its
dispatch job and ``message.queued``/``message.scheduled`` event, hands both to
the queue, and answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from shared import telemetry
from shared.containers import MESSAGES
from shared.domain.addresses import check_message_for_channel
from shared.domain.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    OcmError,
    PayloadTooLarge,
    ValidationFailed,
)
from shared.domain.ids import new_id
from shared.domain.messages import (
    MAX_JSON_DEPTH,
    MessageCreate,
    Terminal,
    json_depth_within,
    to_utc_text,
)
from shared.domain.models import Document
from shared.domain.status import PENDING
from shared.domain.timeline import change_status, schedule, start
from shared.ports import Filter, Page, PreconditionFailed, Query
from shared.services.channels import channels as channel_service
from shared.services.deps import Deps
from shared.services.identity import limits, tenants
from shared.services.messaging import outbox, send_rules
from shared.services.pages import list_page
from shared.services.receivers import unsubscribe
from shared.services.webhooks import fanout as webhook_fanout

MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH = 1000
INTERNAL_FIELDS = frozenset(
    {
        "_etag",
        "tenant_id",
        "dispatch",
        "outbox_at",
        "events_at",
        "pending_events",
        "claim",
        "receipt_ids",
        "traceparent",
        "channel_failures",
    }
)


def public(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(prefix + ".".join(str(p) for p in err["loc"]) or "body", err["msg"])
        for err in exc.errors(include_url=False)
    ]


def parse_message(raw: Any, *, size: int | None = None, extra: int = 0) -> MessageCreate:
    """Validate one message's shape.

    ``size`` is its JSON size when already known; ``extra`` counts what the message
    will carry besides (a batch's shared context) against the same limit.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed("A message is a JSON object", errors=[FieldError("body", "object")])
    size = (_json_size(raw, "body") if size is None else size) + extra
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"A message may be at most {MAX_MESSAGE_BYTES} bytes of JSON; this one is {size}",
            code="MESSAGE_TOO_LARGE",
        )
    try:
        return MessageCreate.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("The message is not valid", errors=field_errors(exc)) from None


def _json_size(value: Any, field: str, depth: int | None = None) -> int:
    """The JSON size of a value, refusing what nests deeper than ``depth`` (free-form
    parts: the model's own validators limit those inside a message) or deeper than
    JSON encoders go."""
    if depth is not None and not json_depth_within(value, depth):
        raise ValidationFailed(
            "The JSON is nested too deeply",
            errors=[FieldError(field, f"nests deeper than {depth} levels")],
        )
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise ValidationFailed(
            "The JSON is nested too deeply", errors=[FieldError(field, "nests too deeply")]
        ) from None


class ChannelCache:
    """One lookup per channel name per request (a batch names few channels)."""

    def __init__(self, deps: Deps, tenant_id: str) -> None:
        self.deps, self.tenant_id = deps, tenant_id
        self.cache: dict[str, Document | None] = {}
        self._webhooks: frozenset[str] | None = None

    async def webhooks(self) -> frozenset[str]:
        """The event types the tenant's webhooks take (once per request)."""
        if self._webhooks is None:
            self._webhooks = await webhook_fanout.interest(self.deps, self.tenant_id)
        return self._webhooks

    async def get(self, name: str) -> Document:
        key = name.lower()
        if key not in self.cache:
            self.cache[key] = await channel_service.find_for_sending(self.deps, self.tenant_id, key)
        doc = self.cache[key]
        if doc is None or doc["status"] == "deleted":
            raise NotFoundError(f"No channel named {name!r}", code="CHANNEL_NOT_FOUND")
        return doc


def _check_times(msg: MessageCreate, now: datetime) -> None:
    expires = msg.options.expires_at
    if expires is not None and expires <= now:
        raise ValidationFailed(
            "The message would expire before it is sent",
            code="MESSAGE_EXPIRED",
            errors=[FieldError("options.expires_at", "must be in the future")],
        )
    if expires is not None and msg.send_at is not None and msg.send_at >= expires:
        raise ValidationFailed(
            "send_at is after the message expires",
            errors=[FieldError("send_at", "must be before options.expires_at")],
        )


def _terminal(t: Terminal | None) -> dict[str, Any] | None:
    if t is None:
        return None
    out: dict[str, Any] = {"type": t.type, "address": t.address}
    if t.display_name is not None:
        out["display_name"] = t.display_name
    return out


async def make_message(
    deps: Deps,
    tenant_id: str,
    raw: dict[str, Any],
    msg: MessageCreate,
    channels: ChannelCache,
    now: datetime,
    *,
    batch_id: str | None = None,
    batch_context: dict[str, Any] | None = None,
    traceparent: str | None = None,
    msg_id: str | None = None,
) -> Document:
    """A new outbound message document, checked against its channel's rules (and its
    fallbacks against theirs: a fallback that could not be sent is refused now)."""
    channel = await channels.get(msg.channel)
    webhooks = await channels.webhooks()
    # The sandbox's plain messages skip the channel rules (and their cost): hot path.
    rules = send_rules.apply_to(channel, msg)
    prepared = await send_rules.prepare(deps, tenant_id, raw, msg, channel, now) if rules else None
    doc = build_message(
        deps,
        tenant_id,
        prepared.raw if prepared else raw,
        prepared.message if prepared else msg,
        channel,
        now,
        batch_id=batch_id,
        batch_context=batch_context,
        traceparent=traceparent,
        msg_id=msg_id,
        webhooks=webhooks,
    )
    if prepared is None:
        return doc
    doc.update(prepared.extra)
    doc.update(await send_rules.check(deps, doc, prepared, channel))
    if channel["type"] == "email":
        headers = await unsubscribe.headers_for(deps, doc)
        if headers:
            doc["email_headers"] = headers
    if msg.fallback is not None:
        await make_message(deps, tenant_id, raw["fallback"], msg.fallback, channels, now)
        doc["fallback"] = raw["fallback"]
        spec = deps.catalog.resolve(channel["type"], channel["provider"])
        if msg.options.fallback_after and spec.receipts:
            doc["fallback_after"] = msg.options.fallback_after
    return doc


def build_message(
    deps: Deps,
    tenant_id: str,
    raw: dict[str, Any],
    msg: MessageCreate,
    channel: Document,
    now: datetime,
    *,
    batch_id: str | None = None,
    batch_context: dict[str, Any] | None = None,
    traceparent: str | None = None,
    msg_id: str | None = None,
    webhooks: frozenset[str] = frozenset(),
) -> Document:
    """A new outbound message document with its first status and dispatch job
    (``webhooks``: the event types the tenant's webhooks take)."""
    spec = deps.catalog.resolve(channel["type"], channel["provider"])
    default = channel.get("default_sender")
    receiver, sender = check_message_for_channel(
        msg, spec, Terminal.model_validate(default) if default else None
    )
    _check_times(msg, now)
    msg_id = msg_id or new_id("msg", now)
    stamp = to_utc_text(now)
    due = msg.send_at if msg.send_at is not None and msg.send_at > now else now
    options = raw.get("options") or {}
    doc: Document = {
        "id": msg_id,
        "tenant_id": tenant_id,
        "direction": "outbound",
        "channel": channel["name"],
        "channel_id": channel["id"],
        "provider": channel["provider"],
        "receiver": _terminal(receiver),
        "sender": _terminal(sender),
        "content": raw["content"],
        "subject": msg.subject,
        "context": {**(batch_context or {}), **msg.context},
        "options": options,
        "tags": msg.tags,
        "send_at": to_utc_text(msg.send_at) if msg.send_at else None,
        "expires_at": to_utc_text(msg.options.expires_at) if msg.options.expires_at else None,
        "max_attempts": msg.options.max_attempts or deps.settings.OCM_MAX_ATTEMPTS,
        "attempts": 0,
        "throttles": 0,
        "provider_message_id": None,
        "error": None,
        "batch_id": batch_id,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if traceparent is not None:
        doc["traceparent"] = traceparent
    start(doc, "scheduled" if due > now else "queued", now)
    outbox.forget_unreceived_events(deps, doc, webhooks)
    schedule(doc, outbox.job_id(msg_id, 1), 1, due)
    return doc


async def accept_message(
    deps: Deps, tenant_id: str, raw: Any, *, size: int | None = None
) -> Document:
    with telemetry.span("accept", tenant_id=tenant_id) as span:
        msg = parse_message(raw, size=size)
        doc = await make_message(
            deps,
            tenant_id,
            raw,
            msg,
            ChannelCache(deps, tenant_id),
            deps.clock.now(),
            traceparent=telemetry.traceparent(),
        )
        span.set_attribute("ocm.message_id", doc["id"])
        await reserve(deps, tenant_id, 1)
        await deps.store.create(MESSAGES, doc)
        await outbox.hand_off(deps, [doc], clear=False, best_effort=True)
    return public(doc)


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch_id: str
    items: list[dict[str, Any]]


async def accept_batch(
    deps: Deps, tenant_id: str, messages: list[Any], context: dict[str, Any]
) -> BatchResult:
    """Each item is accepted or refused on its own; accepted ones are written together."""
    if len(messages) > MAX_BATCH:
        raise PayloadTooLarge(
            f"A batch holds at most {MAX_BATCH} messages; this one has {len(messages)}",
            code="BATCH_TOO_LARGE",
        )
    shared_context = _json_size(context, "context", MAX_JSON_DEPTH)
    now = deps.clock.now()
    batch_id = new_id("bat", now)
    with telemetry.span("accept_batch", tenant_id=tenant_id, batch_id=batch_id):
        return await _accept_batch(
            deps, tenant_id, messages, context, shared_context, now, batch_id
        )


async def _accept_batch(
    deps: Deps,
    tenant_id: str,
    messages: list[Any],
    context: dict[str, Any],
    shared_context: int,
    now: datetime,
    batch_id: str,
) -> BatchResult:
    channels = ChannelCache(deps, tenant_id)
    items: list[dict[str, Any]] = []
    docs: list[Document] = []
    trace = telemetry.traceparent()
    for index, raw in enumerate(messages):
        try:
            msg = parse_message(raw, extra=shared_context)
            doc = await make_message(
                deps,
                tenant_id,
                raw,
                msg,
                channels,
                now,
                batch_id=batch_id,
                batch_context=context,
                traceparent=trace,
            )
        except OcmError as exc:
            items.append(
                {"index": index, "id": None, "status": "rejected", "error": _item_error(exc)}
            )
            continue
        docs.append(doc)
        items.append({"index": index, "id": doc["id"], "status": doc["status"], "error": None})
    if docs:
        await reserve(deps, tenant_id, len(docs))
        await deps.store.create_many(MESSAGES, docs)
        await outbox.hand_off(deps, docs, clear=False, best_effort=True)
    return BatchResult(batch_id=batch_id, items=items)


async def reserve(deps: Deps, tenant_id: str, count: int) -> None:
    """Count the messages against the tenant's quotas (and its ancestors') or refuse them."""
    await limits.reserve_for_lineage(deps, await tenants.lineage(deps, tenant_id), count)


def _item_error(exc: OcmError) -> dict[str, Any]:
    return {
        "code": exc.code,
        "detail": exc.detail,
        "errors": [{"field": e.field, "message": e.message} for e in exc.errors],
    }


async def get_message(deps: Deps, tenant_id: str, message_id: str) -> Document:
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    if doc is None:
        raise NotFoundError(f"No message {message_id!r}", code="MESSAGE_NOT_FOUND")
    return doc


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
    if flt.since:
        where.append(Filter("created_at", "gte", to_utc_text(flt.since)))
    if flt.until:
        where.append(Filter("created_at", "lt", to_utc_text(flt.until)))
    return await list_page(
        deps.store,
        MESSAGES,
        Query(
            scope=tenant_id,
            where=tuple(where),
            order_by="created_at",
            descending=True,
            limit=limit,
            cursor=cursor,
        ),
    )


async def cancel_message(deps: Deps, tenant_id: str, message_id: str) -> Document:
    """Cancel a scheduled or queued message; its queued job is then ignored."""
    for _ in range(3):
        doc = await get_message(deps, tenant_id, message_id)
        if doc["status"] not in PENDING:
            raise ConflictError(
                f"Only scheduled or queued messages can be cancelled; this one is {doc['status']}",
                code="MESSAGE_NOT_CANCELLABLE",
            )
        change_status(doc, "cancelled", deps.clock.now())
        try:
            written = await deps.store.replace(MESSAGES, doc, etag=doc["_etag"])
        except PreconditionFailed:
            continue
        await outbox.hand_off(deps, [written])
        return public(written)
    raise ConflictError("The message changed while cancelling; try again", code="CONCURRENT_UPDATE")
