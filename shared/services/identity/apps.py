"""Client applications: unlimited per tenant, each with granted scopes and two API
keys (primary and secondary) rotated independently.

A key is ``ocm_<public prefix>_<secret>``, shown once; the Directory holds one entry
per key (``key_<prefix>``: tenant, app, slot, scopes, SHA-256 of the secret), which is
what authentication reads. An app's scopes live on the app and are copied onto its
key entries, so a request needs one lookup; whoever changes them updates both.
Revoking a key deletes its entry: this instance forgets it at once, other instances
within ``OCM_LOOKUP_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.containers import APPS, DIRECTORY
from shared.domain import scopes as scope_table
from shared.domain.errors import (
    FieldError,
    Forbidden,
    NotFoundError,
    ValidationFailed,
)
from shared.domain.ids import new_api_key, new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.names import Name
from shared.domain.principal import Principal
from shared.ports import Filter, Page
from shared.services import concurrency
from shared.services.deps import Deps
from shared.services.identity import client_credentials, directory
from shared.services.pages import in_creation_order

Slot = Literal["primary", "secondary"]
SLOTS: tuple[Slot, ...] = ("primary", "secondary")
PUBLIC_FIELDS = (
    "id",
    "name",
    "description",
    "scopes",
    "status",
    "keys",
    "client",
    "created_at",
    "updated_at",
)


def _known_scopes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    bad = scope_table.unknown(value)
    if bad:
        raise ValueError(f"unknown scopes: {', '.join(bad)}")
    return sorted(set(value))


class AppCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=1024)
    scopes: list[str] = Field(
        min_length=1, max_length=len(scope_table.SCOPES), description="Granted scopes."
    )

    _known = field_validator("scopes")(_known_scopes)


class AppUpdate(BaseModel):
    """Only the fields sent change; name, scopes and status cannot be null."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=1024)
    scopes: list[str] | None = Field(default=None, min_length=1)
    status: Literal["active", "disabled"] | None = None

    _known = field_validator("scopes")(_known_scopes)


def public(app: Document) -> Document:
    return {k: app.get(k) for k in PUBLIC_FIELDS}


def _check_grant(principal: Principal, wanted: list[str]) -> None:
    """A credential grants at most its own scopes: no app can mint a stronger one."""
    beyond = sorted(s for s in wanted if not principal.has(s))
    if beyond:
        raise Forbidden(
            f"This credential cannot grant {', '.join(beyond)}", code="SCOPE_NOT_GRANTABLE"
        )


async def create_app(deps: Deps, principal: Principal, data: AppCreate) -> tuple[Document, str]:
    """A new app and its primary key (returned once, never stored)."""
    _check_grant(principal, data.scopes)
    now = to_utc_text(deps.clock.now())
    app: Document = {
        "id": new_id("app"),
        "tenant_id": principal.tenant_id,
        "name": data.name,
        "description": data.description,
        "scopes": data.scopes,
        "status": "active",
        "keys": {"primary": None, "secondary": None},
        "created_at": now,
        "updated_at": now,
    }
    key, entry = _new_key(app, "primary", now)
    app["keys"]["primary"] = _key_info(entry)
    await deps.store.create(DIRECTORY, entry)
    await deps.store.create(APPS, app)
    return app, key


async def list_apps(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    live = (Filter("status", "ne", "deleted"),)
    return await in_creation_order(
        deps.store, APPS, tenant_id, where=live, limit=limit, cursor=cursor
    )


async def get_app(deps: Deps, tenant_id: str, app_id: str) -> Document:
    app = await deps.store.read(APPS, tenant_id, app_id)
    if app is None or app.get("status") == "deleted":
        raise NotFoundError(f"No application {app_id!r}", code="APP_NOT_FOUND")
    return app


async def _managed(deps: Deps, principal: Principal, app_id: str) -> Document:
    """The app, if this credential may manage it: an app no wider than itself (a
    weaker credential must not take over a stronger app's keys or secret)."""
    app = await get_app(deps, principal.tenant_id, app_id)
    _check_grant(principal, list(app["scopes"]))
    return app


async def update_app(deps: Deps, principal: Principal, app_id: str, data: AppUpdate) -> Document:
    if data.scopes is not None:
        _check_grant(principal, data.scopes)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    nulls = [k for k in ("name", "scopes", "status") if k in changes and changes[k] is None]
    if nulls:
        raise ValidationFailed(
            "These fields cannot be null", errors=[FieldError(k, "cannot be null") for k in nulls]
        )
    if not changes:
        raise ValidationFailed("Nothing to change", errors=[FieldError("body", "empty")])

    async def change(app: Document) -> None:
        app.update(changes, updated_at=to_utc_text(deps.clock.now()))

    tries = concurrency.for_request("The application changed while updating")
    app = await concurrency.rewrite(
        deps.store, APPS, lambda: _managed(deps, principal, app_id), change, tries
    )
    await _sync_keys(deps, app)
    return app


async def delete_app(deps: Deps, principal: Principal, app_id: str) -> None:
    """Revoke both keys, then mark the app deleted (its id is never reused)."""
    tenant_id = principal.tenant_id
    app = await _managed(deps, principal, app_id)
    for slot in SLOTS:
        await _revoke(deps, app, slot)
    await client_credentials.revoke_client_secret(deps, app)
    await deps.store.patch(
        APPS,
        tenant_id,
        app_id,
        {
            "status": "deleted",
            "keys": {"primary": None, "secondary": None},
            "client": None,
            "updated_at": to_utc_text(deps.clock.now()),
        },
    )


async def rotate_key(
    deps: Deps, principal: Principal, app_id: str, slot: Slot
) -> tuple[Document, str]:
    """A new key in ``slot``; the key it replaces stops working (the other slot's key
    keeps working, so clients move from one to the other without a gap)."""
    tenant_id = principal.tenant_id
    app = await _managed(deps, principal, app_id)
    now = to_utc_text(deps.clock.now())
    key, entry = _new_key(app, slot, now)
    await deps.store.create(DIRECTORY, entry)
    old = (app.get("keys") or {}).get(slot)
    app = await deps.store.patch(
        APPS, tenant_id, app_id, {f"keys.{slot}": _key_info(entry), "updated_at": now}
    )
    if old:
        await _delete_entry(deps, tenant_id, old["prefix"])
    return app, key


async def revoke_key(deps: Deps, principal: Principal, app_id: str, slot: Slot) -> Document:
    tenant_id = principal.tenant_id
    app = await _managed(deps, principal, app_id)
    if not (app.get("keys") or {}).get(slot):
        raise NotFoundError(f"The {slot} key of {app_id!r} is not set", code="KEY_NOT_FOUND")
    await _revoke(deps, app, slot)
    return await deps.store.patch(
        APPS,
        tenant_id,
        app_id,
        {f"keys.{slot}": None, "updated_at": to_utc_text(deps.clock.now())},
    )


# --- internals ----------------------------------------------------------------------


def _new_key(app: Document, slot: Slot, now: str) -> tuple[str, Document]:
    key, prefix, digest = new_api_key()
    entry = directory.api_key_entry(
        prefix, app["tenant_id"], app["id"], digest, list(app["scopes"]), now
    )
    entry["slot"] = slot
    entry["status"] = app.get("status", "active")
    return key, entry


def _key_info(entry: Document) -> Document:
    """What the app shows of a key: its public prefix and age, never the secret."""
    return {"prefix": entry["prefix"], "created_at": entry["created_at"]}


async def _revoke(deps: Deps, app: Document, slot: Slot) -> None:
    info = (app.get("keys") or {}).get(slot)
    if info:
        await _delete_entry(deps, app["tenant_id"], info["prefix"])


async def _delete_entry(deps: Deps, tenant_id: str, prefix: str) -> None:
    await deps.store.delete(DIRECTORY, tenant_id, directory.api_key_id(prefix))
    directory.forget_api_key(deps, prefix)


async def _sync_keys(deps: Deps, app: Document) -> None:
    """Copy the app's scopes and status onto its key entries and its client secret's
    entry (what requests read)."""
    client_id = client_credentials.client_entry_id(app["id"])
    if app.get("client"):
        await deps.store.patch(
            DIRECTORY,
            app["tenant_id"],
            client_id,
            {"scopes": list(app["scopes"]), "status": app["status"]},
        )
        deps.lookups.forget((DIRECTORY, client_id))
    for info in (app.get("keys") or {}).values():
        if not info:
            continue
        await deps.store.patch(
            DIRECTORY,
            app["tenant_id"],
            directory.api_key_id(info["prefix"]),
            {"scopes": list(app["scopes"]), "status": app["status"]},
        )
        directory.forget_api_key(deps, info["prefix"])


async def issue_client_secret(
    deps: Deps, principal: Principal, app_id: str
) -> tuple[Document, str]:
    """A new OAuth2 client secret for the app (its client id is the app id); the one
    it replaces stops working. Shown once."""
    tenant_id = principal.tenant_id
    app = await _managed(deps, principal, app_id)
    secret = await client_credentials.issue_client_secret(deps, app)
    now = to_utc_text(deps.clock.now())
    app = await deps.store.patch(
        APPS, tenant_id, app_id, {"client": {"created_at": now}, "updated_at": now}
    )
    return app, secret


async def revoke_client_secret(deps: Deps, principal: Principal, app_id: str) -> Document:
    tenant_id = principal.tenant_id
    app = await _managed(deps, principal, app_id)
    if not await client_credentials.revoke_client_secret(deps, app):
        raise NotFoundError(f"{app_id!r} has no client secret", code="CLIENT_SECRET_NOT_FOUND")
    return await deps.store.patch(
        APPS, tenant_id, app_id, {"client": None, "updated_at": to_utc_text(deps.clock.now())}
    )
