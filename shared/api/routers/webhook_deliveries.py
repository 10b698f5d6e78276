"""/api/v1/webhooks/{webhook_id}/deliveries: a subscription's deliveries, listed,
read, retried; replays of past events; a test event."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.routers.webhooks import WEBHOOK
from shared.api.schemas import problems
from shared.domain.messages import UtcDatetime
from shared.services.webhooks import deliveries

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
DELIVERY = WEBHOOK + "/deliveries/{delivery_id}"


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
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await deliveries.list_deliveries(
        caller.deps,
        caller.tenant_id,
        webhook_id,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return page_answer(page, deliveries.delivery_public)


@router.get(
    DELIVERY,
    summary="One delivery and its attempts",
    responses={200: {"model": DeliveryPublic}, **problems(401, 403, 404)},
)
async def get_delivery(
    webhook_id: str, delivery_id: str, caller: Annotated[Caller, scoped("read:webhook")]
) -> JsonResponse:
    doc = await deliveries.get_delivery(caller.deps, caller.tenant_id, webhook_id, delivery_id)
    return JsonResponse(deliveries.delivery_public(doc))


@router.post(
    DELIVERY + "/retry",
    status_code=202,
    summary="Attempt a delivered or failed delivery once more, now",
    responses={202: {"model": DeliveryPublic}, **problems(401, 403, 404, 409)},
)
async def retry_delivery(
    webhook_id: str, delivery_id: str, caller: Annotated[Caller, scoped("update:webhook")]
) -> JsonResponse:
    doc = await deliveries.retry_delivery(caller.deps, caller.tenant_id, webhook_id, delivery_id)
    await caller.audit("webhook.delivery.retry", type="webhook", id=webhook_id, delivery=doc["id"])
    return JsonResponse(deliveries.delivery_public(doc), status_code=202)


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
        replay_id, count = await deliveries.replay(
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
    doc = await deliveries.send_test(caller.deps, caller.tenant_id, webhook_id)
    await caller.audit("webhook.test", type="webhook", id=webhook_id, delivery=doc["id"])
    return JsonResponse({"delivery_id": doc["id"], "event_id": doc["event_id"]}, status_code=202)
