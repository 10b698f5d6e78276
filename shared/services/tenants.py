"""Tenants and their bootstrap credential; API-key authentication."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from shared.containers import APPS, DIRECTORY, TENANTS
from shared.domain.errors import Unauthorized, ValidationFailed
from shared.domain.ids import hash_secret, new_api_key, new_id, split_api_key
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import SYSTEM, Query
from shared.services import directory
from shared.services.deps import Deps, Principal

ALL_SCOPES = frozenset({"*"})
"""Until roles and scopes land (issue 4), the bootstrap key carries every scope."""


@dataclass(frozen=True, slots=True)
class NewTenant:
    tenant: Document
    api_key: str


async def create_tenant(deps: Deps, name: str) -> NewTenant:
    """A tenant, its first client application and that app's API key (shown once)."""
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ValidationFailed("A tenant name has 1 to 128 characters")
    now = to_utc_text(deps.clock.now())
    tenant_id = new_id("tn")
    tenant = {
        "id": tenant_id,
        "tenant_id": tenant_id,
        "name": name,
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }
    app_id = new_id("app")
    key, prefix, digest = new_api_key()
    app = {
        "id": app_id,
        "tenant_id": tenant_id,
        "name": "bootstrap",
        "scopes": sorted(ALL_SCOPES),
        "created_at": now,
    }
    entry = directory.api_key_entry(prefix, tenant_id, app_id, digest, sorted(ALL_SCOPES), now)
    await deps.store.create(TENANTS, tenant)
    await deps.store.create(APPS, app)
    await deps.store.create(DIRECTORY, entry)
    return NewTenant(tenant=tenant, api_key=key)


async def list_tenants(deps: Deps) -> list[Document]:
    """Operator view (system scope): every tenant."""
    page = await deps.store.query(TENANTS, Query(scope=SYSTEM, order_by="created_at", limit=1000))
    return page.items


async def authenticate_api_key(deps: Deps, key: str) -> Principal:
    """Resolve ``X-API-Key`` to a principal, or raise Unauthorized (one message for all)."""
    parts = split_api_key(key)
    if parts is None:
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    prefix, secret = parts
    entry = await directory.find_api_key(deps, prefix)
    if entry is None or entry.get("status") != "active":
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    if not hmac.compare_digest(entry["secret_sha256"], hash_secret(secret)):
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    return Principal(
        tenant_id=entry["tenant_id"],
        app_id=entry["app_id"],
        credential_id=entry["id"],
        scopes=frozenset(entry.get("scopes", ())),
    )
