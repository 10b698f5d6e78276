"""/api/v1/opt-outs: the receivers a tenant may not send to, per channel type."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import problems
from shared.domain.opt_outs import OptOutCreate, OptOutPublic
from shared.services.receivers import opt_outs

router = APIRouter(prefix="/api/v1/opt-outs", tags=["opt-outs"])

# ``:path`` so an address holding a (URL-encoded) slash still names one opt-out.
ONE = "/{channel_type}/{address:path}"
ADDRESS_NOTE = (
    "URL-encode the address (`%2B` for `+`); it is normalised as when stored, so "
    "`+47 912 34 567` finds `+4791234567`."
)


class OptOutList(BaseModel):
    items: list[OptOutPublic]
    next_cursor: str | None


@router.get(
    "",
    summary="List the receivers who opted out",
    responses={200: {"model": OptOutList}, **problems(401, 403)},
)
async def list_opt_outs(
    caller: Annotated[Caller, scoped("read:opt_out")],
    channel_type: str | None = Query(None, max_length=32, description="sms, email, …"),
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await opt_outs.list_opt_outs(
        caller.deps, caller.tenant_id, channel_type=channel_type, limit=limit, cursor=cursor
    )
    return page_answer(page, opt_outs.public)


@router.post(
    "",
    status_code=201,
    summary="Opt a receiver out of a channel type",
    description="Idempotent: opting out an address that is opted out already answers "
    "the existing opt-out. The address is normalised (E.164, lower-case e-mail). "
    "Honours `Idempotency-Key`.",
    responses={201: {"model": OptOutPublic}, **problems(400, 401, 403, 409, 422)},
)
async def add_opt_out(
    request: Request,
    data: OptOutCreate,
    caller: Annotated[Caller, scoped("manage:opt_out")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        doc = await opt_outs.add(
            caller.deps, caller.tenant_id, data.channel_type, data.address, data.reason
        )
        await caller.audit(
            "opt_out.add", type="opt_out", id=doc["id"], channel_type=doc["channel_type"]
        )
        return 201, opt_outs.public(doc)

    return await idempotent(caller, request, data.model_dump(mode="json"), create)


@router.get(
    ONE,
    summary="Whether a receiver opted out, and why",
    description=ADDRESS_NOTE,
    responses={200: {"model": OptOutPublic}, **problems(401, 403, 404)},
)
async def get_opt_out(
    channel_type: str, address: str, caller: Annotated[Caller, scoped("read:opt_out")]
) -> JsonResponse:
    doc = await opt_outs.get_opt_out(caller.deps, caller.tenant_id, channel_type, address)
    return JsonResponse(opt_outs.public(doc))


@router.delete(
    ONE,
    status_code=204,
    summary="Opt a receiver back in",
    description=ADDRESS_NOTE,
    responses=problems(401, 403, 404),
)
async def remove_opt_out(
    channel_type: str, address: str, caller: Annotated[Caller, scoped("manage:opt_out")]
) -> Response:
    removed = await opt_outs.delete_opt_out(caller.deps, caller.tenant_id, channel_type, address)
    await caller.audit(
        "opt_out.remove", type="opt_out", id=removed, channel_type=channel_type.lower()
    )
    return Response(status_code=204)
