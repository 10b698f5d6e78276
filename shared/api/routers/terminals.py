"""/api/v1/terminals: the sender identities a tenant owns on its channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import problems
from shared.domain.models import Document
from shared.domain.terminals import TerminalCreate, TerminalPublic, TerminalUpdate
from shared.services.channels import terminals

router = APIRouter(prefix="/api/v1/terminals", tags=["terminals"])


class TerminalList(BaseModel):
    items: list[TerminalPublic]
    next_cursor: str | None


def _target(doc: Document) -> Document:
    """What the audit log names: never more than the terminal's identity."""
    return {
        "type": "terminal",
        "id": doc["id"],
        "channel": doc["channel"],
        "terminal_type": doc["type"],
        "address": doc["address"],
    }


@router.post(
    "",
    status_code=201,
    summary="Register a sender identity on a channel",
    description="The type must be one the channel's provider sends as; the address is "
    "normalised (E.164, lower-case domain). `type: email` with `address: @example.com` "
    "registers a whole e-mail domain. Honours `Idempotency-Key`.",
    responses={201: {"model": TerminalPublic}, **problems(400, 401, 403, 404, 409, 422)},
)
async def create_terminal(
    request: Request,
    data: TerminalCreate,
    caller: Annotated[Caller, scoped("create:terminal")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        doc = await terminals.create_terminal(caller.deps, caller.tenant_id, data)
        await caller.audit("terminal.create", **_target(doc))
        return 201, terminals.public(doc)

    return await idempotent(caller, request, data.model_dump(mode="json"), create)


@router.get(
    "",
    summary="List sender identities, optionally of one channel",
    responses={200: {"model": TerminalList}, **problems(401, 403, 404)},
)
async def list_terminals(
    caller: Annotated[Caller, scoped("read:terminal")],
    channel: str | None = Query(None, description="A channel's name."),
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await terminals.list_terminals(
        caller.deps, caller.tenant_id, channel=channel, limit=limit, cursor=cursor
    )
    return page_answer(page, terminals.public)


@router.get(
    "/{terminal_id}",
    summary="A sender identity",
    responses={200: {"model": TerminalPublic}, **problems(401, 403, 404)},
)
async def get_terminal(
    terminal_id: str, caller: Annotated[Caller, scoped("read:terminal")]
) -> JsonResponse:
    doc = await terminals.get_terminal(caller.deps, caller.tenant_id, terminal_id)
    return JsonResponse(terminals.public(doc))


@router.patch(
    "/{terminal_id}",
    summary="Change a sender identity's role, status or display name",
    description="A disabled terminal, or one that only receives, cannot be sent as: "
    "at once on this instance, within `OCM_LOOKUP_CACHE_SECONDS` elsewhere.",
    responses={200: {"model": TerminalPublic}, **problems(400, 401, 403, 404, 422)},
)
async def update_terminal(
    terminal_id: str,
    data: TerminalUpdate,
    caller: Annotated[Caller, scoped("update:terminal")],
) -> JsonResponse:
    doc = await terminals.update_terminal(caller.deps, caller.tenant_id, terminal_id, data)
    changed = sorted(data.model_dump(exclude_unset=True))
    await caller.audit("terminal.update", **_target(doc), fields=changed)
    return JsonResponse(terminals.public(doc))


@router.delete(
    "/{terminal_id}",
    status_code=204,
    summary="Remove a sender identity",
    responses=problems(401, 403, 404),
)
async def delete_terminal(
    terminal_id: str, caller: Annotated[Caller, scoped("delete:terminal")]
) -> Response:
    doc = await terminals.delete_terminal(caller.deps, caller.tenant_id, terminal_id)
    await caller.audit("terminal.delete", **_target(doc))
    return Response(status_code=204)
