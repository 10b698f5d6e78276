"""/api/v1/templates: the tenant's message templates, and previews of their rendering."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import problems
from shared.domain.templates import (
    TemplateCreate,
    TemplatePreview,
    TemplatePublic,
    TemplateUpdate,
)
from shared.services.channels import templates

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


class TemplateList(BaseModel):
    items: list[TemplatePublic]
    next_cursor: str | None


class TemplateRendered(BaseModel):
    content: dict[str, Any]
    subject: str | None


@router.post(
    "",
    status_code=201,
    summary="Create a message template",
    responses={201: {"model": TemplatePublic}, **problems(400, 401, 403, 409, 422)},
)
async def create_template(
    request: Request,
    data: TemplateCreate,
    caller: Annotated[Caller, scoped("create:template")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        doc = await templates.create_template(caller.deps, caller.tenant_id, data)
        await caller.audit("template.create", type="template", id=doc["id"], name=doc["name"])
        return 201, templates.public(doc)

    return await idempotent(caller, request, data.model_dump(mode="json"), create)


@router.get(
    "", summary="List templates", responses={200: {"model": TemplateList}, **problems(401, 403)}
)
async def list_templates(
    caller: Annotated[Caller, scoped("read:template")],
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await templates.list_templates(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return page_answer(page, templates.public)


@router.get(
    "/{name}",
    summary="A template",
    responses={200: {"model": TemplatePublic}, **problems(401, 403, 404)},
)
async def get_template(
    name: str, caller: Annotated[Caller, scoped("read:template")]
) -> JsonResponse:
    return JsonResponse(
        templates.public(await templates.get_template(caller.deps, caller.tenant_id, name))
    )


@router.patch(
    "/{name}",
    summary="Change a template's description, variables (replaced) or variants (merged "
    "by channel type; null removes one)",
    responses={200: {"model": TemplatePublic}, **problems(400, 401, 403, 404, 409, 422)},
)
async def update_template(
    name: str,
    data: TemplateUpdate,
    caller: Annotated[Caller, scoped("update:template")],
) -> JsonResponse:
    doc = await templates.update_template(caller.deps, caller.tenant_id, name, data)
    changed = sorted(data.model_fields_set)
    await caller.audit(
        "template.update", type="template", id=doc["id"], name=doc["name"], fields=changed
    )
    return JsonResponse(templates.public(doc))


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a template (messages already accepted keep what it rendered)",
    responses=problems(401, 403, 404),
)
async def delete_template(
    name: str, caller: Annotated[Caller, scoped("delete:template")]
) -> Response:
    doc = await templates.delete_template(caller.deps, caller.tenant_id, name)
    await caller.audit("template.delete", type="template", id=doc["id"], name=doc["name"])
    return Response(status_code=204)


@router.post(
    "/{name}/preview",
    summary="Render a template for a channel type, as a message with this data would be",
    responses={200: {"model": TemplateRendered}, **problems(400, 401, 403, 404, 422)},
)
async def preview_template(
    name: str,
    data: TemplatePreview,
    caller: Annotated[Caller, scoped("read:template")],
) -> JsonResponse:
    content, subject = await templates.preview(caller.deps, caller.tenant_id, name, data)
    return JsonResponse({"content": content, "subject": subject})
