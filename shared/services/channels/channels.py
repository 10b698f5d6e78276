"""Channels: create, read, update, delete, and their write-only credentials."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.containers import CHANNELS, DIRECTORY
from shared.domain.addresses import check_terminal
from shared.domain.channels import (
    ChannelCreate,
    ChannelUpdate,
    DeliveryPolicy,
    ProviderSpec,
    validate_credentials,
    validate_settings,
)
from shared.domain.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import Terminal, to_utc_text
from shared.domain.models import Document
from shared.ports import Conflict, Filter, Page
from shared.services import concurrency
from shared.services.deps import Deps
from shared.services.identity import directory
from shared.services.lookups import find_named, find_named_cached, forget_named
from shared.services.pages import in_creation_order

log = logging.getLogger(__name__)

INTERNAL_FIELDS = ("_etag", "tenant_id", "former_name")


def credentials_secret_name(channel_id: str) -> str:
    """Derived from the immutable id, never from the (tenant-chosen) name."""
    return f"channel-{channel_id.replace('_', '-')}-credentials"


def public(doc: Document, base_url: str | None = None) -> Document:
    """The API's view; with ``base_url``, the URL the provider should call back."""
    out = {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}
    out.setdefault("policy", DeliveryPolicy().model_dump(mode="json"))
    if base_url:
        out["callback_url"] = (
            f"{base_url.rstrip('/')}/api/v1/callbacks/{doc['provider']}/{doc['id']}"
        )
    return out


async def create_channel(deps: Deps, tenant_id: str, data: ChannelCreate) -> Document:
    spec = deps.catalog.resolve(data.type, data.provider)
    settings = validate_settings(spec, data.settings)
    _check_destination(deps, spec, settings)
    default_sender = _default_sender(spec.sender_types, data.default_sender)
    now = to_utc_text(deps.clock.now())
    doc: Document = {
        "id": new_id("ch"),
        "tenant_id": tenant_id,
        "name": data.name,
        "type": spec.type,
        "provider": spec.provider,
        "description": data.description,
        "settings": settings,
        "default_sender": default_sender,
        "status": data.status,
        "policy": await _checked_policy(deps, tenant_id, data.name, spec.type, data.policy),
        "has_credentials": False,
        "created_at": now,
        "updated_at": now,
    }
    # The directory entry first: a channel without one could not take callbacks,
    # while an entry without its channel (a failed create) answers 404 like none.
    await deps.store.upsert(
        DIRECTORY, directory.channel_entry(doc["id"], tenant_id, spec.provider, now)
    )
    try:
        return await deps.store.create(CHANNELS, doc)
    except Conflict:
        raise ConflictError(
            f"A channel named {data.name!r} exists already", code="CHANNEL_NAME_TAKEN"
        ) from None


def _default_sender(allowed: tuple[str, ...], sender: Terminal | None) -> Document | None:
    """The default sender, normalised, or a validation error (type or address)."""
    if sender is None:
        return None
    if not allowed:
        raise ValidationFailed(
            "This channel has no sender: its provider sends as the channel itself",
            errors=[FieldError("default_sender", "not taken by this channel")],
        )
    errors: list[FieldError] = []
    checked = check_terminal("default_sender", sender, allowed, errors)
    if errors:
        raise ValidationFailed("The default sender is not valid for this channel", errors=errors)
    return checked.model_dump(exclude_none=True)


async def _checked_policy(
    deps: Deps, tenant_id: str, name: str, channel_type: str, policy: DeliveryPolicy
) -> Document:
    """The policy as stored; its backups must be other live channels of the same type."""
    errors: list[FieldError] = []
    for i, backup in enumerate(policy.backups):
        other = await find_by_name(deps, tenant_id, backup)
        if backup == name:
            errors.append(FieldError(f"policy.backups.{i}", "a channel cannot back itself up"))
        elif other is None or other["status"] == "deleted":
            errors.append(FieldError(f"policy.backups.{i}", "no such channel"))
        elif other["type"] != channel_type:
            errors.append(FieldError(f"policy.backups.{i}", f"not a {channel_type} channel"))
    if errors:
        raise ValidationFailed("The delivery policy is not valid", errors=errors)
    return policy.model_dump(mode="json")


def policy_of(channel: Document) -> DeliveryPolicy:
    """A channel's delivery policy (channels made before policies get the defaults)."""
    return DeliveryPolicy.model_validate(channel.get("policy") or {})


def pace_of(deps: Deps, channel: Document) -> float:
    """Sends per second this channel is held to (0: unpaced)."""
    rate = (channel.get("policy") or {}).get("rate_per_second")
    if rate is None:
        spec = deps.catalog.specs.get((channel["type"], channel["provider"]))
        rate = spec.rate_per_second if spec is not None else None
    return float(rate or 0)


async def find_by_name(deps: Deps, tenant_id: str, name: str) -> Document | None:
    return await find_named(deps.store, CHANNELS, tenant_id, name)


async def find_for_sending(deps: Deps, tenant_id: str, name: str) -> Document | None:
    """The channel a new message names (cached briefly; management reads are fresh)."""
    return await find_named_cached(deps.lookups, deps.store, CHANNELS, tenant_id, name)


def forget(deps: Deps, doc: Document) -> None:
    """Drop a channel from the lookup cache after any write to it."""
    for name in (doc.get("name"), doc.get("former_name")):
        if name:
            forget_named(deps.lookups, CHANNELS, doc["tenant_id"], str(name))


async def get_channel(deps: Deps, tenant_id: str, name: str) -> Document:
    doc = await find_by_name(deps, tenant_id, name)
    if doc is None:
        raise NotFoundError(f"No channel named {name!r}", code="CHANNEL_NOT_FOUND")
    return doc


async def list_channels(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    live = (Filter("status", "ne", "deleted"),)
    return await in_creation_order(
        deps.store, CHANNELS, tenant_id, where=live, limit=limit, cursor=cursor
    )


@dataclass(frozen=True, slots=True)
class ChannelUpdated:
    doc: Document
    credentials_dropped: tuple[str, ...] = ()
    """The settings whose change dropped the channel's credentials (none: kept)."""


async def update_channel(
    deps: Deps, tenant_id: str, name: str, data: ChannelUpdate
) -> ChannelUpdated:
    """Change a channel. A change of where its credentials are sent (its provider's
    ``destination`` settings: an API origin, an SMTP host) drops them: whoever may
    change a channel must not be able to send its write-only credentials elsewhere."""
    moved: tuple[str, ...] = ()

    async def change(doc: Document) -> None:
        nonlocal moved
        spec = deps.catalog.resolve(doc["type"], doc["provider"])
        changes = data.model_dump(exclude_unset=True)
        if "settings" in changes and changes["settings"] is not None:
            settings = validate_settings(spec, {**doc["settings"], **changes["settings"]})
            _check_destination(deps, spec, settings)
            moved = tuple(k for k in spec.destination if settings.get(k) != doc["settings"].get(k))
            if moved and doc.get("has_credentials"):
                doc["has_credentials"] = False
            else:
                moved = ()
            doc["settings"] = settings
        if "default_sender" in changes:
            doc["default_sender"] = _default_sender(spec.sender_types, data.default_sender)
        if "description" in changes:
            doc["description"] = data.description
        if data.status is not None:
            doc["status"] = data.status
        if data.policy is not None:
            doc["policy"] = await _checked_policy(
                deps, tenant_id, doc["name"], doc["type"], data.policy
            )
        doc["updated_at"] = to_utc_text(deps.clock.now())

    tries = concurrency.for_request("The channel changed while updating")
    written = await concurrency.rewrite(
        deps.store, CHANNELS, lambda: get_channel(deps, tenant_id, name), change, tries
    )
    forget(deps, written)
    if moved:
        await deps.secrets.delete(credentials_secret_name(written["id"]))
    return ChannelUpdated(written, moved)


def _check_destination(deps: Deps, spec: ProviderSpec, settings: dict[str, Any]) -> None:
    """In production credentials travel only encrypted: no http:// API origin, no SMTP
    without TLS."""
    if deps.settings.OCM_ENV != "production":
        return
    plain = [
        k
        for k in spec.destination
        if str(settings.get(k) or "").lower().startswith("http://")
        or (k == "security" and settings.get(k) == "none")
    ]
    if plain:
        raise ValidationFailed(
            "In production a channel reaches its provider over TLS only",
            code="CHANNEL_DESTINATION_NOT_ENCRYPTED",
            errors=[FieldError(f"settings.{k}", "must be encrypted (https, TLS)") for k in plain],
        )


async def set_credentials(
    deps: Deps, tenant_id: str, name: str, credentials: dict[str, Any]
) -> Document:
    doc = await get_channel(deps, tenant_id, name)
    spec = deps.catalog.resolve(doc["type"], doc["provider"])
    if not spec.credentials:
        raise ValidationFailed(
            f"A {spec.provider} channel takes no credentials", code="CREDENTIALS_NOT_SUPPORTED"
        )
    values = validate_credentials(spec, credentials)
    await deps.secrets.set(credentials_secret_name(doc["id"]), _encode(values))
    written = await deps.store.patch(
        CHANNELS,
        tenant_id,
        doc["id"],
        {"has_credentials": True, "updated_at": to_utc_text(deps.clock.now())},
    )
    forget(deps, written)
    return written


async def load_credentials(deps: Deps, channel: Document) -> dict[str, str]:
    if not channel.get("has_credentials"):
        return {}
    raw = await deps.secrets.get(credentials_secret_name(channel["id"]))
    return _decode(raw) if raw else {}


def _encode(values: dict[str, str]) -> str:
    import orjson

    return orjson.dumps(values).decode()


def _decode(raw: str) -> dict[str, str]:
    import orjson

    data = orjson.loads(raw)
    return {str(k): str(v) for k, v in data.items()}


async def retire_channel(deps: Deps, tenant_id: str, name: str) -> Document:
    """Stop new sends at once: mark the channel deleted, free its name (kept as
    ``former_name``) and delete its credentials; returns it as it was. Its pending
    messages are messaging's to fail (``messaging.messages.delete_channel``)."""
    doc = await get_channel(deps, tenant_id, name)
    await deps.store.patch(
        CHANNELS,
        tenant_id,
        doc["id"],
        {
            "status": "deleted",
            "name": None,
            "former_name": doc["name"],
            "updated_at": to_utc_text(deps.clock.now()),
        },
    )
    forget(deps, doc)
    await deps.secrets.delete(credentials_secret_name(doc["id"]))
    return doc
