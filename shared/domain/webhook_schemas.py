"""What each webhook event carries, as pydantic models: the source of the JSON Schemas
that ``GET /api/v1/event-types`` lists and the OpenAPI document's ``webhooks`` show.

Every event is ``{"id", "type", "timestamp", "data"}``. Receivers should ignore
fields they do not know: new ones may be added, none removed or retyped within v1.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.domain.webhooks import EVENT_TYPES

DESCRIPTIONS: dict[str, str] = {
    "message.scheduled": "A message was accepted for a later send (`send_at`).",
    "message.queued": "A message was accepted and queued for sending.",
    "message.sent": "The provider accepted the message (final where a channel has no "
    "delivery receipts: Telegram, push, Apprise).",
    "message.delivered": "The provider reported the message delivered.",
    "message.read": "The provider reported the message read.",
    "message.failed": "The message failed for good; `error` says why.",
    "message.expired": "The message passed its `expires_at` before it could be sent.",
    "message.cancelled": "The message was cancelled before it was sent.",
    "message.received": "An inbound message arrived: `sender`, `receiver`, `content`.",
    "message.retrying": "A send failed transiently and will be tried again at "
    "`next_attempt_at`, or moved to a backup channel (`failover`).",
    "message.fallback": "The message's fallback was sent as a new message (`fallback_id`).",
    "webhook.endpoint.failing": "One of the tenant's webhook endpoints has been failing "
    "continuously; it will be disabled if it goes on failing.",
    "webhook.endpoint.disabled": "OCM disabled one of the tenant's webhook endpoints "
    "(failing too long, or it answered 410 Gone).",
    "webhook.test": "Sent by POST /api/v1/webhooks/{id}/test, to that endpoint only.",
    "usage.threshold_reached": "One of the tenant's usage thresholds was reached in the "
    "current day or month (once per threshold and period).",
}


class EventError(BaseModel):
    code: str = Field(description="Stable: EXPIRED, CHANNEL_DELETED, SMTP_550, …")
    reason: str
    permanent: bool = Field(description="False: OCM tries again (message.retrying).")
    provider_status: str | None = Field(default=None, description="The provider's own status.")


class EventFailover(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="The channel given up on.")
    to: str = Field(description="The backup channel the message moved to.")
    reason: str


class EventTerminal(BaseModel):
    type: str = Field(description="email, phone, telegram, …")
    address: str
    display_name: str | None = None


class EventContent(BaseModel):
    """An inbound message's content, as the provider gave it."""

    type: str = Field(description="text, html or media")
    text: str | None = None
    html: str | None = None
    url: str | None = Field(default=None, description="A media message's file.")
    media_type: str | None = None
    caption: str | None = None


class MessageEventData(BaseModel):
    """What every ``message.*`` event says about its message."""

    message_id: str
    channel: str | None = Field(description="The channel's name.")
    channel_id: str | None
    direction: Literal["outbound", "inbound"]
    status: str = Field(
        description="The message's status after the event: scheduled, queued, sent, "
        "delivered, read, failed, expired, cancelled, received"
    )
    attempt: int | None = Field(description="The send attempt this event is about.")
    provider_message_id: str | None
    error: EventError | None
    context: dict[str, Any] = Field(description="The message's `context`, echoed.")
    tags: list[str]


class RetryingEventData(MessageEventData):
    next_attempt_at: datetime | None = Field(
        description="When the next attempt is due (null: at once, on a backup channel)."
    )
    failover: EventFailover | None = Field(
        default=None, description="Set when the message moved to a backup channel."
    )


class FallbackEventData(MessageEventData):
    fallback_id: str = Field(description="The id of the fallback message sent.")


class ReceivedEventData(MessageEventData):
    sender: EventTerminal | None
    receiver: EventTerminal | None
    content: EventContent | None
    subject: str | None = Field(default=None, description="E-mail only.")


class EndpointEventData(BaseModel):
    webhook_id: str
    url: str
    failing_since: datetime | None
    reason: str | None = Field(description="The last failure, or why it was disabled.")


class TestEventData(BaseModel):
    webhook_id: str = Field(description="The subscription being tested.")


class UsageEventData(BaseModel):
    metric: str = Field(description="accepted, sent, delivered, failed, segments or cost_usd")
    period: str = Field(description="day or month (UTC)")
    period_start: datetime
    limit: float
    value: float = Field(description="The period's figure when it was seen reached.")


DATA_MODELS: dict[str, type[BaseModel]] = {
    "message.retrying": RetryingEventData,
    "message.fallback": FallbackEventData,
    "message.received": ReceivedEventData,
    "webhook.endpoint.failing": EndpointEventData,
    "webhook.endpoint.disabled": EndpointEventData,
    "webhook.test": TestEventData,
    "usage.threshold_reached": UsageEventData,
}


def _model_name(event_type: str) -> str:
    """``message.sent`` → ``MessageSentEvent``."""
    return "".join(p.capitalize() for p in event_type.split(".")) + "Event"


def _only(value: str) -> Any:
    """The type whose one value is ``value`` (a JSON Schema ``const``)."""
    return Literal[value]


def _envelope(event_type: str) -> type[BaseModel]:
    data = DATA_MODELS.get(event_type, MessageEventData)
    model: type[BaseModel] = create_model(
        _model_name(event_type),
        __doc__=DESCRIPTIONS[event_type],
        id=(
            str,
            Field(
                description="The event's id: the same on every retry of it (the "
                "`webhook-id` header); deduplicate on it."
            ),
        ),
        type=(_only(event_type), Field(description="The event type.")),
        timestamp=(datetime, Field(description="When the event happened (RFC 3339, UTC).")),
        data=(data, ...),
    )
    return model


EVENT_MODELS: dict[str, type[BaseModel]] = {t: _envelope(t) for t in EVENT_TYPES}


@cache
def schema_of(event_type: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one event type's payload, self-contained."""
    return EVENT_MODELS[event_type].model_json_schema()


def catalogue() -> list[dict[str, Any]]:
    """Every event type a webhook can subscribe to, described, with its schema."""
    return [
        {"type": t, "description": DESCRIPTIONS[t], "schema": schema_of(t)} for t in EVENT_TYPES
    ]
