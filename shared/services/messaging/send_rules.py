"""What a message must satisfy on its channel, beyond its shape, before it is accepted.

In order: a template is rendered (its variables checked) into the channel type's
content; the content must suit the type (SMS segments, an e-mail subject, a push
title or body); the sender must be one the tenant owns on the channel (its
default sender or an active terminal; the sandbox simulates any); the receiver
must not have opted out on that type; and WhatsApp free-form content needs the
receiver to have written within 24 hours (else a template). Each refusal is a
422 with its own code. Messages on the sandbox that use none of this cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain import opt_outs as opt_out_rules
from shared.domain import terminals as terminal_rules
from shared.domain.content_rules import check_content
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.message_document import MessageDocument, Party
from shared.domain.messages import MessageCreate
from shared.domain.models import Document
from shared.services.channels import channels as channel_service
from shared.services.channels import templates, terminals
from shared.services.deps import Deps
from shared.services.receivers import contacts, opt_outs


@dataclass(frozen=True, slots=True)
class Prepared:
    raw: dict[str, Any]
    message: MessageCreate
    template: dict[str, Any] | None
    """The rendered template's name and data (None: no OCM template)."""
    in_window: bool | None
    """WhatsApp: whether the receiver wrote within 24 hours (None elsewhere)."""


def apply_to(channel: Document, msg: MessageCreate) -> bool:
    """Whether any rule applies: the sandbox simulates every provider, so its plain
    messages (no template, no fallback) skip the rules — and their cost."""
    return not (
        channel["type"] == "sandbox" and msg.content.type != "template" and msg.fallback is None
    )


async def prepare(
    deps: Deps,
    tenant_id: str,
    raw: dict[str, Any],
    msg: MessageCreate,
    channel: Document,
    now: datetime,
) -> Prepared:
    """The message with its template rendered for ``channel`` (if it names one)."""
    window: bool | None = None
    if channel["type"] == "whatsapp":
        receiver = opt_out_rules.lookup_address(channel["type"], msg.receiver.address)
        window = await contacts.in_window(deps, tenant_id, channel["id"], receiver, now)
    template = None
    if msg.content.type == "template":
        raw, msg, template = await _render(deps, tenant_id, raw, msg, channel, window)
    return Prepared(raw=raw, message=msg, template=template, in_window=window)


async def check(
    deps: Deps, doc: MessageDocument, prepared: Prepared, channel: Document
) -> int | None:
    """The channel type's rules for a message document (its sender and receiver
    normalised), or a ValidationFailed; returns its SMS segments (None: not an SMS)."""
    msg, channel_type, tenant_id = prepared.message, channel["type"], doc["tenant_id"]
    if channel_type == "sandbox":
        return None  # it simulates every provider: no rule of a real one applies
    max_segments = channel_service.policy_of(channel).max_segments if channel_type == "sms" else 0
    segments = check_content(
        channel_type, prepared.raw["content"], msg.subject, max_segments=max_segments
    )
    sender, receiver = doc.get("sender"), doc.get("receiver")
    if channel["provider"] != "sandbox" and sender:
        await _check_sender(deps, tenant_id, sender, channel)
    if channel_type in opt_out_rules.OPT_OUT_TYPES and receiver:
        await _check_not_opted_out(deps, tenant_id, channel_type, receiver["address"])
    if prepared.in_window is False and msg.content.type != "template":
        raise ValidationFailed(
            "WhatsApp takes free-form messages only within 24 hours of the receiver's "
            "last message to this number; send an approved template instead",
            code="WHATSAPP_OUTSIDE_WINDOW",
            errors=[FieldError("content.type", "use a template outside the 24-hour window")],
        )
    return segments


async def _render(
    deps: Deps,
    tenant_id: str,
    raw: dict[str, Any],
    msg: MessageCreate,
    channel: Document,
    window: bool | None,
) -> tuple[dict[str, Any], MessageCreate, dict[str, Any] | None]:
    """An OCM template's variant for the channel type; a template name OCM does not
    know passes through to providers that carry their own (WhatsApp's, the sandbox)."""
    spec = deps.catalog.resolve(channel["type"], channel["provider"])
    name = raw["content"]["template"]
    template = await templates.find_for_sending(deps, tenant_id, name)
    if template is None and "template" in spec.content_types:
        return raw, msg, None
    content, subject = await templates.render_found(
        template, raw["content"], channel["type"], in_window=window
    )
    rendered = {**raw, "content": content, "subject": subject or raw.get("subject")}
    try:
        message = MessageCreate.model_validate(rendered)
    except ValueError as exc:
        raise ValidationFailed(
            f"The template {name!r} rendered content this message cannot carry: {exc}",
            code="TEMPLATE_RENDER_FAILED",
        ) from None
    return rendered, message, {"name": name, "data": raw["content"].get("data")}


async def _check_sender(deps: Deps, tenant_id: str, sender: Party, channel: Document) -> None:
    default = channel.get("default_sender")
    kind, address = sender["type"], sender["address"]
    if default and (kind, address) == (default["type"], default["address"]):
        return
    owned = await terminals.active_senders(deps, tenant_id, channel["id"])
    if not terminal_rules.owns(owned, kind, address):
        raise ValidationFailed(
            "The sender is not an active sender of this channel (register it under "
            "/api/v1/terminals)",
            code="SENDER_NOT_ALLOWED",
            errors=[FieldError("sender.address", "not a terminal of this channel")],
        )


async def _check_not_opted_out(deps: Deps, tenant_id: str, channel_type: str, address: str) -> None:
    if await opt_outs.is_opted_out(deps, tenant_id, channel_type, address):
        raise ValidationFailed(
            f"The receiver opted out of {channel_type} messages from this tenant",
            code="RECEIVER_OPTED_OUT",
            errors=[FieldError("receiver.address", "opted out")],
        )
