"""/api/v1/webhooks: subscriptions, their secrets and deliveries; /api/v1/event-types;
and the OpenAPI document's ``webhooks`` section (``document_webhooks``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shared.api.deps import Caller, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse
from shared.api.schemas import problems
from shared.domain import webhook_schemas
from shared.domain.messages import UtcDatetime
from shared.domain.webhooks import EVENT_TYPES, WebhookCreate, WebhookPublic, WebhookUpdate
from shared.services.webhooks import subscriptions as webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
WEBHOOK = "/webhooks/{webhook_id}"
DELIVERY = WEBHOOK + "/deliveries/{delivery_id}"


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


class Attempt(BaseModel):
    at: str
    status_code: int | None = Field(description="The endpoint's answer, if any.")
    latency_ms: int
    response: str = Field(description="The first 1 KiB of the answer.")
    error: str | None = Field(description="HTTP_500, TIMEOUT, CONNECTION_FAILED, …")


class DeliveryPublic(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    event: dict[str, Any] = Field(description="The payload sent: id, type, timestamp, data.")
    status: Literal["pending", "delivered", "failed"]
    attempt_count: int
    attempts: list[Attempt]
    next_attempt_at: str | None
    error: str | None = Field(
        default=None, description="Why the last attempt failed, or the delivery was given up."
    )
    created_at: str
    updated_at: str


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: UtcDatetime = Field(description="From this time (included), RFC 3339.")
    until: UtcDatetime = Field(description="To this time (excluded), RFC 3339.")


class ReplayAccepted(BaseModel):
    replay_id: str
    events: int = Field(description="How many events are being delivered again.")


class TestAccepted(BaseModel):
    delivery_id: str
    event_id: str


class EventType(BaseModel):
    type: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the payload.")


class EventTypeList(BaseModel):
    items: list[EventType]


# --- subscriptions -------------------------------------------------------------------


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
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> JsonResponse:
    page = await webhooks.list_webhooks(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return JsonResponse(
        {"items": [webhooks.public(d) for d in page.items], "next_cursor": page.next_cursor}
    )


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


# --- deliveries ----------------------------------------------------------------------


@router.get(
    WEBHOOK + "/deliveries",
    summary="A subscription's deliveries, newest first, with their attempts",
    responses={200: {"model": DeliveryList}, **problems(400, 401, 403, 404, 422)},
)
async def list_deliveries(
    webhook_id: str,
    caller: Annotated[Caller, scoped("read:webhook")],
    status: Literal["pending", "delivered", "failed"] | None = None,
    since: Annotated[UtcDatetime | None, Query(description="Created at or after")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Created before")] = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> JsonResponse:
    page = await webhooks.list_deliveries(
        caller.deps,
        caller.tenant_id,
        webhook_id,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return JsonResponse(
        {
            "items": [webhooks.delivery_public(d) for d in page.items],
            "next_cursor": page.next_cursor,
        }
    )


@router.get(
    DELIVERY,
    summary="One delivery and its attempts",
    responses={200: {"model": DeliveryPublic}, **problems(401, 403, 404)},
)
async def get_delivery(
    webhook_id: str, delivery_id: str, caller: Annotated[Caller, scoped("read:webhook")]
) -> JsonResponse:
    doc = await webhooks.get_delivery(caller.deps, caller.tenant_id, webhook_id, delivery_id)
    return JsonResponse(webhooks.delivery_public(doc))


@router.post(
    DELIVERY + "/retry",
    status_code=202,
    summary="Attempt a delivered or failed delivery once more, now",
    responses={202: {"model": DeliveryPublic}, **problems(401, 403, 404, 409)},
)
async def retry_delivery(
    webhook_id: str, delivery_id: str, caller: Annotated[Caller, scoped("update:webhook")]
) -> JsonResponse:
    doc = await webhooks.retry_delivery(caller.deps, caller.tenant_id, webhook_id, delivery_id)
    await caller.audit("webhook.delivery.retry", type="webhook", id=webhook_id, delivery=doc["id"])
    return JsonResponse(webhooks.delivery_public(doc), status_code=202)


@router.post(
    WEBHOOK + "/replay",
    status_code=202,
    summary="Deliver again every event of a time window that the current filters take",
    description="`since` ≤ event time < `until`, at most `OCM_EVENT_RETENTION_DAYS` long; "
    "each event becomes a new delivery (the same event id, so receivers that deduplicate "
    "on `webhook-id` see them as repeats). Honours `Idempotency-Key`.",
    responses={202: {"model": ReplayAccepted}, **problems(400, 401, 403, 404, 409, 422)},
)
async def replay(
    request: Request,
    webhook_id: str,
    data: ReplayRequest,
    caller: Annotated[Caller, scoped("update:webhook")],
) -> JsonResponse:
    window = data.model_dump(mode="json")

    async def run() -> tuple[int, object]:
        replay_id, count = await webhooks.replay(
            caller.deps, caller.tenant_id, webhook_id, data.since, data.until
        )
        await caller.audit("webhook.replay", type="webhook", id=webhook_id, events=count, **window)
        return 202, {"replay_id": replay_id, "events": count}

    return await idempotent(caller, request, window, run)


@router.post(
    WEBHOOK + "/test",
    status_code=202,
    summary="Send a signed webhook.test event to this endpoint",
    responses={202: {"model": TestAccepted}, **problems(401, 403, 404, 409)},
)
async def send_test(
    webhook_id: str, caller: Annotated[Caller, scoped("update:webhook")]
) -> JsonResponse:
    doc = await webhooks.send_test(caller.deps, caller.tenant_id, webhook_id)
    await caller.audit("webhook.test", type="webhook", id=webhook_id, delivery=doc["id"])
    return JsonResponse({"delivery_id": doc["id"], "event_id": doc["event_id"]}, status_code=202)


# --- what can be subscribed ----------------------------------------------------------


@router.get(
    "/event-types",
    summary="Event types a webhook can subscribe to, with a JSON Schema of each payload",
    responses={200: {"model": EventTypeList}},
)
async def event_types() -> JsonResponse:
    return JsonResponse({"items": webhook_schemas.catalogue()})


# --- the OpenAPI document's webhooks section ----------------------------------------

SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id; the same on every retry (deduplicate on it).",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Seconds since the epoch when this attempt was signed.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one "
        "per live secret (two during a rotation's grace period).",
        "schema": {"type": "string"},
    },
]
RECEIVER_ANSWERS: dict[int | str, dict[str, Any]] = {
    "410": {"description": "Gone: OCM disables the subscription"},
    "429": {"description": "Retried on the schedule, later if `Retry-After` says so"},
    "4XX": {"description": "Any other 4xx: this delivery fails, without retries"},
    "5XX": {"description": "Retried on the schedule (so are timeouts and network errors)"},
}


def document_webhooks(app: FastAPI) -> None:
    """One webhook operation per event type, with its payload's schema, in the app's
    OpenAPI document (FastAPI writes ``app.webhooks`` to its ``webhooks`` section)."""
    for event_type in EVENT_TYPES:
        app.webhooks.add_api_route(
            event_type,
            _receiver(webhook_schemas.EVENT_MODELS[event_type]),
            methods=["POST"],
            summary=event_type,
            description=webhook_schemas.DESCRIPTIONS[event_type]
            + " Signed with the Standard Webhooks scheme; see docs/webhooks.md.",
            operation_id="webhook_" + event_type.replace(".", "_"),
            tags=["webhooks"],
            response_class=Response,
            response_description="Delivered (any 2xx will do)",
            responses=RECEIVER_ANSWERS,
            openapi_extra={"parameters": SIGNATURE_HEADERS},
        )


def _receiver(model: type[BaseModel]) -> Callable[..., Awaitable[None]]:
    """A stand-in receiver taking ``model`` as its body: FastAPI describes the
    operation from its signature (it is never called)."""

    async def receive(**_: Any) -> None:
        return None

    body = inspect.Parameter("event", inspect.Parameter.KEYWORD_ONLY, annotation=model)
    receive.__signature__ = inspect.Signature([body])  # type: ignore[attr-defined]
    return receive
