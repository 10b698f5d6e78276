"""/api/v1/webhooks: subscriptions and their signing secrets (their deliveries:
``webhook_deliveries``; what can be subscribed: ``event_types``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import problems
from shared.domain.webhooks import WebhookCreate, WebhookPublic, WebhookUpdate
from shared.services.webhooks import subscriptions as webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
WEBHOOK = "/webhooks/{webhook_id}"


class WebhookCreated(BaseModel):
    webhook: WebhookPublic
    secret: str | None = Field(
        description="The signing secret (`whsec_…`), shown this once; null when an "
        "`Idempotency-Key` replays the answer."
    )


class WebhookList(BaseModel):
    items: list[WebhookPublic]
    next_cursor: str | None


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret, shown this once.")
    previous_expires_at: str | None = Field(
        description="Until when the previous secret signs too (null: it stopped now)."
    )


@router.post(
    "/webhooks",
    status_code=201,
    summary="Subscribe an endpoint to events",
    description="The signing secret is in this answer only. Honours `Idempotency-Key` (a "
    "replay answers `secret: null`: the secret is never kept with the answer).",
    responses={201: {"model": WebhookCreated}, **problems(400, 401, 403, 409, 422)},
)
async def create_webhook(
    request: Request,
    data: WebhookCreate,
    caller: Annotated[Caller, scoped("create:webhook")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        doc, secret = await webhooks.create_webhook(caller.deps, caller.tenant_id, data)
        await caller.audit("webhook.create", type="webhook", id=doc["id"], events=doc["events"])
        return 201, {"webhook": webhooks.public(doc), "secret": secret}

    body = data.model_dump(mode="json")
    return await idempotent(caller, request, body, create, secret_fields=("secret",))


@router.get(
    "/webhooks",
    summary="List webhook subscriptions",
    responses={200: {"model": WebhookList}, **problems(400, 401, 403)},
)
async def list_webhooks(
    caller: Annotated[Caller, scoped("read:webhook")],
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await webhooks.list_webhooks(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return page_answer(page, webhooks.public)


@router.get(
    WEBHOOK,
    summary="A webhook subscription",
    responses={200: {"model": WebhookPublic}, **problems(401, 403, 404)},
)
async def get_webhook(
    webhook_id: str, caller: Annotated[Caller, scoped("read:webhook")]
) -> JsonResponse:
    doc = await webhooks.get_webhook(caller.deps, caller.tenant_id, webhook_id)
    return JsonResponse(webhooks.public(doc))


@router.patch(
    WEBHOOK,
    summary="Change a subscription: URL, events, filters, headers, schedule, enabled",
    description="Enabling a disabled subscription (or moving it to another URL) clears "
    "its failure record. `headers` replaces the whole set.",
    responses={200: {"model": WebhookPublic}, **problems(400, 401, 403, 404, 409, 422)},
)
async def update_webhook(
    webhook_id: str,
    data: WebhookUpdate,
    caller: Annotated[Caller, scoped("update:webhook")],
) -> JsonResponse:
    doc = await webhooks.update_webhook(caller.deps, caller.tenant_id, webhook_id, data)
    changed = sorted(data.model_dump(exclude_unset=True))
    await caller.audit("webhook.update", type="webhook", id=webhook_id, fields=changed)
    return JsonResponse(webhooks.public(doc))


@router.delete(
    WEBHOOK,
    status_code=204,
    summary="Delete a subscription and its secrets; nothing more is delivered to it",
    responses=problems(401, 403, 404),
)
async def delete_webhook(
    webhook_id: str, caller: Annotated[Caller, scoped("delete:webhook")]
) -> Response:
    await webhooks.delete_webhook(caller.deps, caller.tenant_id, webhook_id)
    await caller.audit("webhook.delete", type="webhook", id=webhook_id)
    return Response(status_code=204)


@router.post(
    WEBHOOK + "/rotate-secret",
    summary="Issue a new signing secret; the old one signs alongside it for a while",
    description="Deliveries carry a signature by each live secret (`v1,<sig> v1,<sig>`) "
    "until `previous_expires_at` (`OCM_WEBHOOK_SECRET_GRACE_SECONDS`, a day by default). "
    "The new secret is in this answer only.",
    responses={200: {"model": SecretRotated}, **problems(401, 403, 404)},
)
async def rotate_secret(
    webhook_id: str, caller: Annotated[Caller, scoped("update:webhook")]
) -> JsonResponse:
    secret, until = await webhooks.rotate_secret(caller.deps, caller.tenant_id, webhook_id)
    await caller.audit("webhook.secret.rotate", type="webhook", id=webhook_id)
    return JsonResponse({"secret": secret, "previous_expires_at": until})
