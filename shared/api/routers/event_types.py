"""/api/v1/event-types, and the OpenAPI document's ``webhooks`` section
(``document_webhooks``): every event a subscription can take, with its schema."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel, Field

from shared.api.responses import JsonResponse
from shared.domain import webhook_schemas
from shared.domain.webhooks import EVENT_TYPES

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class EventType(BaseModel):
    type: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the payload.")


class EventTypeList(BaseModel):
    items: list[EventType]


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
