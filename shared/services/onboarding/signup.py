"""A new tenant with its first client application (the bootstrap credential)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.containers import TENANTS
from shared.domain import scopes
from shared.domain.errors import ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.names import name_problem
from shared.domain.principal import Principal
from shared.services.deps import Deps
from shared.services.identity import apps, tenants


@dataclass(frozen=True, slots=True)
class NewTenant:
    tenant: Document
    api_key: str


async def create_tenant(
    deps: Deps, name: str, parent_id: str | None = None, *, grant: frozenset[str] | None = None
) -> NewTenant:
    """A tenant and its first client application, holding every scope, with its
    primary API key (shown once). The app is an ordinary one: its key rotates. With
    ``parent_id`` it is a child tenant, which the parent's credentials may manage."""
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ValidationFailed("A tenant name has 1 to 128 characters")
    problem = name_problem(name)
    if problem:
        raise ValidationFailed(f"The tenant name {problem}")
    now = to_utc_text(deps.clock.now())
    tenant_id = new_id("tn")
    tenant = {
        "id": tenant_id,
        "tenant_id": tenant_id,
        "name": name,
        "status": "active",
        "parent_id": parent_id,
        "created_at": now,
        "updated_at": now,
    }
    if parent_id is not None and len(await tenants.lineage(deps, parent_id)) > tenants.MAX_DEPTH:
        raise ValidationFailed(f"Tenants nest at most {tenants.MAX_DEPTH} deep", code="TOO_DEEP")
    await deps.store.create(TENANTS, tenant)
    granted = scopes.ALL if grant is None else scopes.ALL & grant  # a child: the creator's
    operator = Principal(tenant_id, app_id="", credential_id="", scopes=granted)
    bootstrap = apps.AppCreate(name="bootstrap", scopes=sorted(granted))
    _, key = await apps.create_app(deps, operator, bootstrap)
    return NewTenant(tenant=tenant, api_key=key)
