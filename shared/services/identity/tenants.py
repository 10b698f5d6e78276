"""Tenants: their status (which every credential's request checks), their lineage
(a child tenant inherits status, limits and quotas), and their limits."""

from __future__ import annotations

from typing import Any

from shared.containers import TENANTS
from shared.domain.errors import Forbidden, NotFoundError, Unauthorized, ValidationFailed
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.principal import Principal
from shared.ports import SYSTEM, Filter, Query
from shared.services.deps import Deps
from shared.services.identity import audit

STATUSES = ("provisioning", "pending_confirmation", "active", "suspended")
NUMERIC_LIMITS = (
    "requests_per_second",
    "burst",
    "tenant_requests_per_second",
    "tenant_burst",
    "messages_per_second",
    "message_burst",
    "messages_per_day",
    "messages_per_month",
)
"""What ``set_limits`` sets (and ``children_count``: a parent counts its children's
requests and messages against its own per-tenant ceilings)."""
MAX_DEPTH = 5  # tenants under tenants, at most this deep


async def get_tenant(deps: Deps, tenant_id: str) -> Document:
    doc = await deps.store.read(TENANTS, tenant_id, tenant_id)
    if doc is None:
        raise NotFoundError(f"No tenant {tenant_id!r}", code="TENANT_NOT_FOUND")
    return doc


async def set_status(deps: Deps, tenant_id: str, status: str) -> Document:
    """Suspend or resume a tenant (operator). A suspended tenant's credentials get 403
    TENANT_SUSPENDED: at once on this instance, within OCM_LOOKUP_CACHE_SECONDS on
    others (and in a running `ocm serve`, when the CLI changes it)."""
    if status not in STATUSES:
        raise ValidationFailed(f"A tenant is {', '.join(STATUSES)}")
    await get_tenant(deps, tenant_id)
    action = {"suspended": "tenant.suspend", "active": "tenant.resume"}.get(status, "tenant.status")
    return await _operator_change(deps, tenant_id, action, {"status": status})


async def cached(deps: Deps, tenant_id: str) -> Document | None:
    """The tenant's document, from the lookup cache (status, limits)."""
    return await deps.lookups.get(
        (TENANTS, tenant_id), lambda: deps.store.read(TENANTS, tenant_id, tenant_id)
    )


async def check_active(deps: Deps, tenant_id: str) -> Document:
    """The tenant, if its credentials may act: 403 TENANT_SUSPENDED (itself or an
    ancestor: a suspended parent stops its children), or TENANT_NOT_ACTIVE while it
    is provisioning or awaiting confirmation."""
    chain = await lineage(deps, tenant_id)
    if not chain:
        raise Unauthorized("The credential is not valid", code="INVALID_CREDENTIALS")
    tenant = chain[0]
    status = tenant.get("status")
    if status == "suspended" or any(p.get("status") == "suspended" for p in chain[1:]):
        raise suspended()
    if status != "active":
        raise Forbidden(f"This tenant is not active yet ({status})", code="TENANT_NOT_ACTIVE")
    return tenant


async def lineage(deps: Deps, tenant_id: str) -> list[Document]:
    """The tenant and its ancestors, nearest first, from the lookup cache (at most
    MAX_DEPTH above it); empty if the tenant is gone. What status, limits and quotas
    of a tenant inherit is read from here."""
    chain: list[Document] = []
    current = await cached(deps, tenant_id)
    while current is not None and len(chain) <= MAX_DEPTH:
        chain.append(current)
        parent = current.get("parent_id")
        current = await cached(deps, parent) if parent else None
    return chain


async def act_for(deps: Deps, principal: Principal, target_id: str) -> Principal:
    """A credential of a tenant acting for one of its descendants (``OCM-Tenant``):
    the same scopes there. Never upwards or sideways: anything else is not found."""
    if target_id == principal.tenant_id:
        return principal
    ancestors = [t["id"] for t in (await lineage(deps, target_id))[1:]]
    if principal.tenant_id not in ancestors:
        raise NotFoundError(f"No tenant {target_id!r}", code="TENANT_NOT_FOUND")
    await check_active(deps, target_id)
    return Principal(
        tenant_id=target_id,
        app_id=principal.app_id,
        credential_id=principal.credential_id,
        scopes=principal.scopes,
        user_id=principal.user_id,
        acting_from=principal.tenant_id,
    )


async def list_children(deps: Deps, tenant_id: str) -> list[Document]:
    page = await deps.store.query(
        TENANTS,
        Query(
            scope=SYSTEM,
            where=(Filter("parent_id", "eq", tenant_id),),
            order_by="created_at",
            limit=1000,
        ),
    )
    return page.items


async def set_limits(deps: Deps, tenant_id: str, changes: dict[str, float | None]) -> Document:
    """Set (a number) or clear (None: back to the platform's setting) the tenant's own
    rate limit and quotas (operator)."""
    allowed = {*NUMERIC_LIMITS, "children_count"}
    unknown = set(changes) - allowed
    if unknown or any(v is not None and v < 0 for v in changes.values()):
        raise ValidationFailed(f"Limits are {', '.join(sorted(allowed))}, each 0 or more")
    doc = await get_tenant(deps, tenant_id)
    merged = {**(doc.get("limits") or {}), **changes}
    limits = {
        k: bool(v) if k == "children_count" else v for k, v in merged.items() if v is not None
    }
    patch = {"limits": limits}
    return await _operator_change(deps, tenant_id, "tenant.limits", patch, limits=limits)


async def _operator_change(
    deps: Deps, tenant_id: str, action: str, changes: dict[str, Any], **recorded: Any
) -> Document:
    """Change the tenant as the operator did (audited with ``recorded``), seen at once
    on this instance."""
    changes = {**changes, "updated_at": to_utc_text(deps.clock.now())}
    doc = await deps.store.patch(TENANTS, tenant_id, tenant_id, changes)
    deps.lookups.forget((TENANTS, tenant_id))
    target = {"type": "tenant", "id": tenant_id, **recorded}
    await audit.operator_record(deps, tenant_id, action, target)
    return doc


def suspended() -> Forbidden:
    return Forbidden("This tenant is suspended", code="TENANT_SUSPENDED")


async def list_tenants(deps: Deps) -> list[Document]:
    """Operator view (system scope): every tenant."""
    page = await deps.store.query(TENANTS, Query(scope=SYSTEM, order_by="created_at", limit=1000))
    return page.items
