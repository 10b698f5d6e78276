"""Tenants and their bootstrap credential; API-key authentication."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from shared.containers import TENANTS
from shared.domain import scopes
from shared.domain.errors import Forbidden, NotFoundError, Unauthorized, ValidationFailed
from shared.domain.ids import hash_secret, new_id, split_api_key
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import SYSTEM, Query
from shared.services import apps, audit, directory
from shared.services.deps import Deps, Principal


@dataclass(frozen=True, slots=True)
class NewTenant:
    tenant: Document
    api_key: str


async def create_tenant(deps: Deps, name: str) -> NewTenant:
    """A tenant and its first client application, holding every scope, with its
    primary API key (shown once). The app is an ordinary one: its key rotates."""
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
    await deps.store.create(TENANTS, tenant)
    operator = Principal(tenant_id, app_id="", credential_id="", scopes=scopes.ALL)
    bootstrap = apps.AppCreate(name="bootstrap", scopes=sorted(scopes.ALL))
    _, key = await apps.create_app(deps, operator, bootstrap)
    return NewTenant(tenant=tenant, api_key=key)


async def get_tenant(deps: Deps, tenant_id: str) -> Document:
    doc = await deps.store.read(TENANTS, tenant_id, tenant_id)
    if doc is None:
        raise NotFoundError(f"No tenant {tenant_id!r}", code="TENANT_NOT_FOUND")
    return doc


async def set_status(deps: Deps, tenant_id: str, status: str) -> Document:
    """Suspend or resume a tenant (operator). A suspended tenant's credentials get 403
    TENANT_SUSPENDED: at once on this instance, within OCM_LOOKUP_CACHE_SECONDS on
    others (and in a running `ocm serve`, when the CLI changes it)."""
    if status not in ("active", "suspended"):
        raise ValidationFailed("A tenant is active or suspended")
    await get_tenant(deps, tenant_id)
    doc = await deps.store.patch(
        TENANTS,
        tenant_id,
        tenant_id,
        {"status": status, "updated_at": to_utc_text(deps.clock.now())},
    )
    deps.lookups.forget((TENANTS, tenant_id))
    action = "tenant.suspend" if status == "suspended" else "tenant.resume"
    await audit.operator_record(deps, tenant_id, action, {"type": "tenant", "id": tenant_id})
    return doc


async def cached(deps: Deps, tenant_id: str) -> Document | None:
    """The tenant's document, from the lookup cache (status, limits)."""
    return await deps.lookups.get(
        (TENANTS, tenant_id), lambda: deps.store.read(TENANTS, tenant_id, tenant_id)
    )


async def is_suspended(deps: Deps, tenant_id: str) -> bool:
    """Whether the tenant is suspended (or gone); cached like other lookups."""
    tenant = await cached(deps, tenant_id)
    return tenant is None or tenant.get("status") == "suspended"


async def set_limits(deps: Deps, tenant_id: str, changes: dict[str, float | None]) -> Document:
    """Set (a number) or clear (None: back to the platform's setting) the tenant's own
    rate limit and quotas (operator)."""
    allowed = {"requests_per_second", "burst", "messages_per_day", "messages_per_month"}
    unknown = set(changes) - allowed
    if unknown or any(v is not None and v < 0 for v in changes.values()):
        raise ValidationFailed(f"Limits are {', '.join(sorted(allowed))}, each 0 or more")
    doc = await get_tenant(deps, tenant_id)
    merged = {**(doc.get("limits") or {}), **changes}
    limits = {k: v for k, v in merged.items() if v is not None}
    doc = await deps.store.patch(
        TENANTS,
        tenant_id,
        tenant_id,
        {"limits": limits, "updated_at": to_utc_text(deps.clock.now())},
    )
    deps.lookups.forget((TENANTS, tenant_id))
    await audit.operator_record(
        deps, tenant_id, "tenant.limits", {"type": "tenant", "id": tenant_id, "limits": limits}
    )
    return doc


def suspended() -> Forbidden:
    return Forbidden("This tenant is suspended", code="TENANT_SUSPENDED")


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
    if await is_suspended(deps, entry["tenant_id"]):
        raise suspended()
    return Principal(
        tenant_id=entry["tenant_id"],
        app_id=entry["app_id"],
        credential_id=entry["id"],
        scopes=frozenset(entry.get("scopes", ())),
    )
