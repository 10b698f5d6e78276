"""The audit log: every management action — who (application and key), what, when,
from which address — recorded per tenant, readable at GET /api/v1/audit.

Records are written after the action succeeds, by the route that performed it (a
replayed idempotent request records nothing new). They expire after
``OCM_AUDIT_RETENTION_DAYS``. Secrets never enter them: targets are ids and names.
"""

from __future__ import annotations

from typing import Any

from shared.containers import AUDIT
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.principal import Principal
from shared.ports import Filter, Page, Query
from shared.services.deps import Deps
from shared.services.pages import list_page

PUBLIC_FIELDS = ("id", "at", "action", "actor", "target", "address")


async def record(
    deps: Deps,
    principal: Principal,
    action: str,
    target: dict[str, Any],
    address: str | None,
) -> Document:
    """Record one action (``channel.create``, ``app.key.rotate``, …) on ``target``."""
    now = deps.clock.now()
    doc: Document = {
        "id": new_id("aud", now),
        "tenant_id": principal.tenant_id,
        "at": to_utc_text(now),
        "action": action,
        "actor": {
            "app_id": principal.app_id or None,
            "user_id": principal.user_id,
            "credential": principal.credential_id or None,
            "acting_from": principal.acting_from,  # a parent tenant acting for this one
        },
        "target": target,
        "address": address,
        "ttl": deps.settings.OCM_AUDIT_RETENTION_DAYS * 86_400,
    }
    await deps.store.create(AUDIT, doc)
    return doc


async def operator_record(deps: Deps, tenant_id: str, action: str, target: dict[str, Any]) -> None:
    """An action the platform operator took from the CLI (no credential, no address)."""
    operator = Principal(tenant_id, app_id="", credential_id="operator", scopes=frozenset())
    await record(deps, operator, action, target, None)


async def list_records(
    deps: Deps, tenant_id: str, *, action: str | None, limit: int, cursor: str | None
) -> Page:
    where = (Filter("action", "eq", action),) if action else ()
    query = Query(
        scope=tenant_id, where=where, order_by="at", descending=True, limit=limit, cursor=cursor
    )
    return await list_page(deps.store, AUDIT, query)


def public(doc: Document) -> Document:
    return {k: doc.get(k) for k in PUBLIC_FIELDS}
