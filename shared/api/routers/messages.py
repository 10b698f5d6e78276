"""/api/v1/messages: send one or a batch, read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from shared.api.body import json_body, read_json
from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import BatchAccepted, MessageList, MessagePublic, problems
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import UtcDatetime
from shared.domain.status import STATUSES
from shared.services.messaging import intake, messages

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])

Sender = Annotated[Caller, scoped("send:message")]
Reader = Annotated[Caller, scoped("read:message")]
Status = Literal[STATUSES]  # type: ignore[valid-type]


@router.post(
    "",
    status_code=202,
    summary="Send a message",
    description="Validates, stores and queues the message, and answers 202 at once; "
    "the outcome arrives as status events. Honours `Idempotency-Key`.",
    responses={202: {"model": MessagePublic}, **problems(400, 401, 403, 404, 409, 413, 422)},
    openapi_extra=json_body("MessageCreate", "The message to send."),
)
async def send_message(request: Request, caller: Sender) -> JsonResponse:
    body, size = await read_json(request)

    async def accept() -> tuple[int, object]:
        return 202, await intake.accept_message(
            caller.deps, caller.tenant_id, body, size=size, app_id=caller.principal.app_id
        )

    return await idempotent(caller, request, body, accept)


@router.post(
    "/batch",
    status_code=202,
    summary="Send up to 1000 messages",
    description="Each item is accepted or refused on its own (`items[].error`); an item's "
    "`context` keys override the batch's. Honours `Idempotency-Key`.",
    responses={202: {"model": BatchAccepted}, **problems(400, 401, 403, 409, 413, 422)},
    openapi_extra=json_body("BatchCreate", "`{messages: [...], context: {...}}`"),
)
async def send_batch(request: Request, caller: Sender) -> JsonResponse:
    body, _ = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValidationFailed(
            "A batch is {messages: [...], context: {...}}",
            errors=[FieldError("messages", "a list of messages is required")],
        )
    items = body["messages"]
    context = body.get("context") or {}
    unknown = set(body) - {"messages", "context"}
    if not items or not isinstance(context, dict) or unknown:
        raise ValidationFailed(
            "A batch is {messages: [...], context: {...}} with at least one message",
            errors=[FieldError(k, "unknown field") for k in sorted(unknown)]
            or [FieldError("messages" if not items else "context", "invalid")],
        )

    async def accept() -> tuple[int, object]:
        result = await intake.accept_batch(
            caller.deps, caller.tenant_id, items, context, app_id=caller.principal.app_id
        )
        return 202, {"batch_id": result.batch_id, "items": result.items}

    return await idempotent(caller, request, body, accept)


@router.get(
    "",
    summary="List messages, newest first",
    responses={200: {"model": MessageList}, **problems(401, 403, 422)},
)
async def list_messages(
    caller: Reader,
    status: Status | None = None,
    channel: str | None = None,
    direction: Literal["outbound", "inbound"] | None = None,
    since: Annotated[
        UtcDatetime | None, Query(description="Created at or after (RFC 3339)")
    ] = None,
    until: Annotated[UtcDatetime | None, Query(description="Created before (RFC 3339)")] = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    flt = messages.MessageFilter(status, channel, direction, since, until)
    page = await messages.list_messages(
        caller.deps, caller.tenant_id, flt, limit=limit, cursor=cursor
    )
    return page_answer(page, messages.public)


@router.get(
    "/{message_id}",
    summary="A message with its status, attempts and event timeline",
    responses={200: {"model": MessagePublic}, **problems(401, 403, 404)},
)
async def get_message(message_id: str, caller: Reader) -> JsonResponse:
    doc = await messages.get_message(caller.deps, caller.tenant_id, message_id)
    return JsonResponse(messages.public(doc))


@router.post(
    "/{message_id}/cancel",
    summary="Cancel a scheduled or queued message",
    responses={200: {"model": MessagePublic}, **problems(401, 403, 404, 409)},
)
async def cancel_message(message_id: str, caller: Sender) -> JsonResponse:
    return JsonResponse(await messages.cancel_message(caller.deps, caller.tenant_id, message_id))
