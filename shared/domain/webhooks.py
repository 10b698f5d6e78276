"""Webhook subscriptions: what they are, which events they take, when they retry.

A subscription document (container ``webhooks``, partition ``tenant_id``)::

    {"id": "whk_…", "tenant_id", "url", "description", "events": ["message.*", …],
     "filters": {"channels": [names], "direction": "inbound"|"outbound"|None,
                 "text_starts_with": str|None, "text_contains": str|None},
     "header_names": [name, …] (sorted), "enabled": bool,
     "retry_schedule": [seconds, …], "disabled_reason": str|None,
     "failing_since": RFC 3339|None, "failing_warned": bool, "created_at", "updated_at"}

Its signing secrets live in the secret store under ``webhook_secret_name(id)`` as
JSON ``[{"secret": "whsec_…", "expires_at": RFC 3339|None}, …]``: the newest
first; after a rotation the old one keeps signing until it expires.

Its custom header values (often an ``Authorization`` token for the endpoint) live in
the secret store too, under ``webhook_headers_name(id)`` as JSON ``{name: value}``;
the document names them only. A subscription made before that kept them on the
document as ``"headers": {name: value}`` (no ``header_names``); such a document is
still delivered with them. Which URLs and headers a subscription may have is in
``shared.domain.webhook_endpoints``.

A delivery document (container ``webhook_deliveries``, partition tenant + id)::

    {"id": "whd_…", "tenant_id", "webhook_id", "event_id", "event_type",
     "event": {the payload sent: id, type, timestamp, data},
     "status": "pending"|"delivered"|"failed", "attempt_count": int,
     "attempts": [{"at", "status_code"|None, "latency_ms", "response" (≤ 1 KiB),
                   "error"|None}],
     "next_attempt_at": RFC 3339|None, "error": str|None, "created_at", "updated_at",
     "ttl": seconds}

A delivery job on the webhook queue: ``{"tenant_id", "delivery_id", "attempt"}``
with message id ``{delivery_id}:{attempt}``.
"""

from __future__ import annotations

import base64
import random
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.ids import hashed_id
from shared.domain.messages import to_utc_text
from shared.domain.retry import MAX_RETRY_AFTER
from shared.domain.status import EventType

MESSAGE_EVENTS: tuple[str, ...] = get_args(EventType)
ENDPOINT_EVENTS = ("webhook.endpoint.failing", "webhook.endpoint.disabled", "webhook.test")
USAGE_EVENTS = ("usage.threshold_reached",)
EVENT_TYPES: tuple[str, ...] = MESSAGE_EVENTS + ENDPOINT_EVENTS + USAGE_EVENTS

DEFAULT_SCHEDULE: tuple[int, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)
"""Seconds before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h."""

JITTER = 0.2
"""Each wait is drawn from ±20 % of the schedule's, so failed endpoints are not all
retried in the same second."""


def valid_pattern(pattern: str) -> bool:
    """An event type, ``*``, or a family wildcard such as ``message.*``."""
    if pattern == "*" or pattern in EVENT_TYPES:
        return True
    if pattern.endswith(".*"):
        stem = pattern[:-1]
        return any(t.startswith(stem) for t in EVENT_TYPES)
    return False


def takes_type(patterns: Iterable[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _inbound_text(data: Mapping[str, Any]) -> str | None:
    content = data.get("content") or {}
    if not isinstance(content, dict):
        return None
    text = content.get("text") if content.get("type") in ("text", "html") else None
    if text is None and content.get("type") == "media":
        text = content.get("caption")
    return text if isinstance(text, str) else None


def matches(subscription: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an event (``{id, type, timestamp, data}``) goes to this subscription."""
    if not subscription.get("enabled", True):
        return False
    if not takes_type(subscription.get("events") or (), str(event.get("type"))):
        return False
    filters: Mapping[str, Any] = subscription.get("filters") or {}
    data: Mapping[str, Any] = event.get("data") or {}
    channels = filters.get("channels")
    if channels and data.get("channel") not in channels:
        return False
    direction = filters.get("direction")
    if direction and data.get("direction") != direction:
        return False
    starts, contains = filters.get("text_starts_with"), filters.get("text_contains")
    if starts or contains:
        text = _inbound_text(data)
        if text is None or data.get("direction") != "inbound":
            return False
        folded = text.strip().casefold()
        if starts and not folded.startswith(starts.strip().casefold()):
            return False
        if contains and contains.casefold() not in folded:
            return False
    return True


def next_delay(
    retries_done: int,
    schedule: Iterable[int] = DEFAULT_SCHEDULE,
    *,
    rng: random.Random | None = None,
    retry_after: float | None = None,
) -> float | None:
    """Seconds until retry number ``retries_done + 1``, or None when the schedule is
    spent. A Retry-After longer than the scheduled wait wins (capped at a day)."""
    steps = list(schedule)
    if retries_done >= len(steps):
        return None
    base = float(steps[retries_done])
    jitter = (rng or random).uniform(-JITTER, JITTER)
    delay = base * (1 + jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def delivery_id(webhook_id: str, event_id: str, purpose: str = "") -> str:
    """Derived, so the fan-out run twice creates one delivery per event and subscription
    (a replay or a manual test passes its own ``purpose``)."""
    return hashed_id("whd", webhook_id, event_id, purpose)


def webhook_secret_name(webhook_id: str) -> str:
    return f"webhook-{webhook_id.replace('_', '-')}-secrets"


def webhook_headers_name(webhook_id: str) -> str:
    """Where the subscription's custom header values are kept (JSON ``{name: value}``)."""
    return f"webhook-{webhook_id.replace('_', '-')}-headers"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def live_secrets(entries: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The stored secret entries still signing at ``now``, in their order (newest first)."""
    return [
        dict(e)
        for e in entries
        if e.get("expires_at") is None or datetime.fromisoformat(e["expires_at"]) > now
    ]


def rotate(
    entries: Iterable[Mapping[str, Any]], secret: str, now: datetime, grace_seconds: int
) -> list[dict[str, Any]]:
    """The entries after a rotation to ``secret``: it first, without an end; then the
    live ones, each signing until ``now + grace_seconds`` at the latest (an earlier
    rotation's end is kept, never extended); those ending by ``now`` are dropped."""
    until = now + timedelta(seconds=grace_seconds)
    kept = []
    for entry in live_secrets(entries, now):
        ends = entry.get("expires_at")
        expires = min(until, datetime.fromisoformat(ends)) if ends else until
        if expires > now:
            kept.append({"secret": entry["secret"], "expires_at": to_utc_text(expires)})
    return [{"secret": secret, "expires_at": None}, *kept]


def payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a webhook carries: the event without its tenant."""
    return {k: event[k] for k in ("id", "type", "timestamp", "data") if k in event}


def _known_patterns(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [p for p in value if not valid_pattern(p)]
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return list(dict.fromkeys(value))


def _checked_waits(value: list[int] | None) -> list[int] | None:
    if value is not None and any(not 1 <= v <= 7 * 86_400 for v in value):
        raise ValueError("each wait is 1 s to 7 days")
    return value


class WebhookFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list, max_length=50)
    direction: Literal["inbound", "outbound"] | None = None
    text_starts_with: str | None = Field(
        default=None, min_length=1, max_length=256, description="Inbound text (any case)."
    )
    text_contains: str | None = Field(
        default=None, min_length=1, max_length=256, description="Inbound text (any case)."
    )


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=1024)
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    enabled: bool = True
    retry_schedule: list[int] | None = Field(
        default=None,
        min_length=0,
        max_length=20,
        description="Seconds before each retry; unset: 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 14 h, "
        "20 h, 24 h. Each wait is jittered by ±20 %.",
    )

    _known = field_validator("events")(_known_patterns)
    _waits = field_validator("retry_schedule")(_checked_waits)


class WebhookUpdate(BaseModel):
    """Only the fields sent change; ``url``, ``events``, ``filters``, ``headers`` and
    ``enabled`` cannot be null; a null ``retry_schedule`` restores the default.
    ``headers`` replaces the whole set."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=1024)
    filters: WebhookFilters | None = None
    headers: dict[str, str] | None = Field(default=None, max_length=20)
    enabled: bool | None = Field(
        default=None, description="Enabling clears the failure record of a disabled one."
    )
    retry_schedule: list[int] | None = Field(default=None, max_length=20)

    _known = field_validator("events")(_known_patterns)
    _waits = field_validator("retry_schedule")(_checked_waits)


class WebhookPublic(BaseModel):
    """A subscription as the API shows it: custom header values are write-only."""

    id: str
    url: str
    description: str | None
    events: list[str]
    filters: WebhookFilters
    header_names: list[str] = Field(description="The custom headers sent (values hidden).")
    enabled: bool
    retry_schedule: list[int] | None = Field(description="Seconds; null: the default.")
    disabled_reason: str | None = Field(description="Why OCM disabled it, if it did.")
    failing_since: str | None = Field(description="Failing continuously since then.")
    failing_warned: bool
    created_at: str
    updated_at: str
