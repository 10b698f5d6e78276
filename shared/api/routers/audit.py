"""/api/v1/audit: the tenant's audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shared.api.deps import Caller, Limit, scoped
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import AuditList, problems
from shared.services.identity import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    summary="The audit log: every management action, newest first",
    description="Who (application and key), what, when and from which address. "
    "Filter with `action` (e.g. `app.key.rotate`).",
    responses={200: {"model": AuditList}, **problems(401, 403, 422)},
)
async def list_audit(
    caller: Annotated[Caller, scoped("read:audit")],
    action: str | None = Query(None, max_length=64, pattern=r"^[a-z.]+$"),
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await audit.list_records(
        caller.deps, caller.tenant_id, action=action, limit=limit, cursor=cursor
    )
    return page_answer(page, audit.public)
