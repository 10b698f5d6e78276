"""/api/v1/tenants: child tenants, which the parent's credentials manage by sending
``OCM-Tenant: <child id>`` with any request (never the reverse)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from shared.api.deps import Caller, scoped
from shared.api.responses import JsonResponse
from shared.api.schemas import problems
from shared.domain.names import Name
from shared.services.identity import tenants
from shared.services.onboarding import signup

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])


class ChildCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class ChildCreated(BaseModel):
    tenant_id: str
    api_key: str = Field(description="The child's bootstrap key, shown this once.")


class ChildTenant(BaseModel):
    tenant_id: str
    name: str
    status: str
    created_at: str


class ChildList(BaseModel):
    items: list[ChildTenant]


@router.post(
    "",
    status_code=201,
    summary="Create a child tenant",
    description="The child has its own applications, users and data; the parent's "
    "credentials act for it with the `OCM-Tenant` header, with their own scopes.",
    responses={201: {"model": ChildCreated}, **problems(400, 401, 403, 422)},
)
async def create_child(
    data: ChildCreate, caller: Annotated[Caller, scoped("manage:tenant")]
) -> JsonResponse:
    created = await signup.create_tenant(
        caller.deps, data.name, parent_id=caller.tenant_id, grant=caller.principal.scopes
    )
    await caller.audit("tenant.child.create", type="tenant", id=created.tenant["id"])
    body = {"tenant_id": created.tenant["id"], "api_key": created.api_key}
    return JsonResponse(body, status_code=201)


@router.get(
    "",
    summary="List child tenants",
    responses={200: {"model": ChildList}, **problems(401, 403)},
)
async def list_children(caller: Annotated[Caller, scoped("read:tenant")]) -> JsonResponse:
    children = await tenants.list_children(caller.deps, caller.tenant_id)
    items = [
        {
            "tenant_id": t["id"],
            "name": t["name"],
            "status": t["status"],
            "created_at": t["created_at"],
        }
        for t in children
    ]
    return JsonResponse({"items": items})
