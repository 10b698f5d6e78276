"""The document a new outbound message becomes: checked against its channel's rules,
with its first status, its event and its dispatch job (intake and fallback build it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from shared.domain.addresses import check_message_for_channel
from shared.domain.errors import (
    FieldError,
    NotFoundError,
    ValidationFailed,
)
from shared.domain.ids import new_id
from shared.domain.jobs import dispatch_job_id
from shared.domain.message_document import MessageDocument, Party
from shared.domain.messages import (
    MAX_CONTEXT_BYTES,
    MessageCreate,
    Terminal,
    to_utc_text,
)
from shared.domain.models import Document
from shared.domain.timeline import schedule, start
from shared.services.channels import channels as channel_service
from shared.services.deps import Deps
from shared.services.events.interest import interest
from shared.services.messaging import repository, send_rules
from shared.services.receivers import unsubscribe


class ChannelCache:
    """One lookup per channel name per request (a batch names few channels)."""

    def __init__(self, deps: Deps, tenant_id: str) -> None:
        self.deps, self.tenant_id = deps, tenant_id
        self.cache: dict[str, Document | None] = {}
        self._webhooks: frozenset[str] | None = None

    async def webhooks(self) -> frozenset[str]:
        """The event types the tenant's webhooks take (once per request)."""
        if self._webhooks is None:
            self._webhooks = await interest(self.deps, self.tenant_id)
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


def _party(t: Terminal | None) -> Party | None:
    if t is None:
        return None
    out: Party = {"type": t.type, "address": t.address}
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
) -> MessageDocument:
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
    if prepared.template is not None:
        doc["template"] = prepared.template
    segments = await send_rules.check(deps, doc, prepared, channel)
    if segments is not None:
        doc["segments"] = segments
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
) -> MessageDocument:
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
    first = "scheduled" if due > now else "queued"
    doc: MessageDocument = {
        "id": msg_id,
        "tenant_id": tenant_id,
        "direction": "outbound",
        "status": first,
        "channel": channel["name"],
        "channel_id": channel["id"],
        "channel_type": channel["type"],
        "provider": channel["provider"],
        "receiver": _party(receiver),
        "sender": _party(sender),
        "content": raw["content"],
        "subject": msg.subject,
        "context": _context(batch_context, msg.context),
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
    start(doc, first, now)
    repository.forget_unreceived_events(deps, doc, webhooks)
    schedule(doc, dispatch_job_id(msg_id, 1), 1, due)
    return doc


def _context(batch: dict[str, Any] | None, own: dict[str, Any]) -> dict[str, Any]:
    """A batch item's context over the batch's, within the bound every event needs."""
    if not batch:
        return own
    context = {**batch, **own}
    if len(orjson.dumps(context)) > MAX_CONTEXT_BYTES:
        raise ValidationFailed(
            "The message is not valid",
            errors=[
                FieldError("context", f"with the batch's, more than {MAX_CONTEXT_BYTES} bytes")
            ],
        )
    return context
