"""Facts: each status transition of a message as analytics counts it, once.

A fact is ``(tenant, message id, transition, at, dimensions)``, keyed on the
transition's own time (the timeline entry's ``at``), never on when a consumer sees
it or on the message's latest status: a ``delivered`` read before its ``sent`` still
counts both, each in its own hour. ``message.scheduled`` and ``message.queued`` are
both the message's acceptance; the fact of acceptance is at the message's creation,
so whichever arrives first counts and the other is the same fact (same key).

The same function reads facts from a stored message (reconciliation recomputes an
hour from the message store) and from an event (the event consumer), so the two can
never count differently: an event carries the fields ``event_fields`` gives it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from shared.domain.models import Document

TRANSITION_OF = {
    "message.scheduled": "accepted",
    "message.queued": "accepted",
    "message.sent": "sent",
    "message.delivered": "delivered",
    "message.read": "read",
    "message.failed": "failed",
    "message.expired": "expired",
    "message.cancelled": "cancelled",
    "message.fallback": "fallback",
    "message.received": "received",
}
TRANSITIONS = tuple(dict.fromkeys(TRANSITION_OF.values()))
"""accepted, sent, delivered, read, failed, expired, cancelled, fallback, received."""
DIMENSIONS = (
    "channel",
    "channel_type",
    "provider",
    "direction",
    "app",
    "template",
    "sender",
    "country",
    "domain",
    "error",
    "fallback_step",
)
LATENCIES = {
    "sent": ("accept_to_sent",),
    "delivered": ("sent_to_delivered", "accept_to_delivered"),
    "read": ("accept_to_read",),
}
ANALYTICS = "analytics"
"""The events topic's application property (``"1"``) on the events analytics counts,
and the member of such an event that carries its analytics fields."""
MAX_TAGS = 20
"""Tags counted per message: all the send API takes (MessageCreate.tags)."""


@dataclass(frozen=True, slots=True)
class Fact:
    tenant_id: str
    message_id: str
    transition: str
    at: datetime
    dims: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    accepted_at: datetime | None = None
    sent_at: datetime | None = None
    segments: int = 0
    """An SMS's segments (on its ``sent``: what the provider bills)."""
    key: str = field(init=False, compare=False)
    """What makes the fact itself: counted once per message and transition."""
    day: str = field(init=False, compare=False)
    hour: str = field(init=False, compare=False)
    """The fact's hour bucket, ``2026-12-07T13`` (UTC, as ``at`` is)."""

    def __post_init__(self) -> None:
        # Read many times per fact by the rollups: made once.
        stamp = self.at.astimezone(UTC).isoformat()
        object.__setattr__(self, "key", f"{self.message_id}:{self.transition}")
        object.__setattr__(self, "day", stamp[:10])
        object.__setattr__(self, "hour", stamp[:13])

    def latencies(self) -> dict[str, float]:
        """The step durations this transition ends, in seconds."""
        measured = {}
        for metric in LATENCIES.get(self.transition, ()):
            start = self.sent_at if metric.startswith("sent_") else self.accepted_at
            if start is not None:
                measured[metric] = max(0.0, (self.at - start).total_seconds())
        return measured


def dimensions(doc: Mapping[str, Any], channel_type: str | None = None) -> dict[str, str]:
    """A message's dimensions (those it has; a missing one is simply absent)."""
    found = _cheap_dimensions(doc, channel_type)
    country = country_of(far_number(doc))
    if country is not None:
        found["country"] = country
    return found


def far_number(doc: Mapping[str, Any]) -> str | None:
    """The other party's phone number (the receiver's, or an inbound sender's)."""
    inbound = doc.get("direction") == "inbound"
    far = _address(doc.get("sender") if inbound else doc.get("receiver"))
    return far if far and far.startswith("+") else None


def _cheap_dimensions(doc: Mapping[str, Any], channel_type: str | None) -> dict[str, str]:
    """Every dimension but the country (parsing a number costs ~20 µs: the event
    carries the number and its consumer finds the country, off the intake path) and
    the error (each failure's own, ``_fact``). A message keeps the dimensions it was
    accepted with: after a failover, its channel, provider and sender are still the
    ones the client chose (``origin_*``), so every transition of a message counts
    under the same values, from its events and from the store alike."""
    inbound = doc.get("direction") == "inbound"
    far = _address(doc.get("sender") if inbound else doc.get("receiver"))
    sender = doc["origin_sender"] if "origin_sender" in doc else doc.get("sender")
    near = _address(doc.get("receiver") if inbound else sender)
    template = doc.get("template")
    found = {
        "channel": doc.get("origin_channel") or doc.get("channel"),
        "channel_type": channel_type or doc.get("channel_type"),
        "provider": doc.get("origin_provider") or doc.get("provider"),
        "direction": doc.get("direction"),
        "app": doc.get("app_id"),
        "template": template.get("name") if isinstance(template, Mapping) else template,
        "sender": near,
        "domain": domain_of(far),
        "fallback_step": str(doc.get("fallback_step", 0)),
    }
    return {k: str(v) for k, v in found.items() if v not in (None, "")}


@functools.lru_cache(maxsize=65_536)
def country_of(address: str | None) -> str | None:
    """ISO 3166 alpha-2 of an E.164 number (None for anything else). Cached: parsing
    costs ~20 µs, and a tenant's numbers repeat (its users, its own numbers)."""
    if not address or not address.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return None
    # The number's own region where phonenumbers knows it; else its calling code's
    # main region (+44 for a UK number not yet in phonenumbers' tables).
    region: str | None = phonenumbers.region_code_for_number(number)
    if not region and number.country_code:
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return region if region and region != "ZZ" else None


def domain_of(address: str | None) -> str | None:
    """The domain of an e-mail address, lower-cased."""
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().lower() or None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _address(party: Any) -> str | None:
    if isinstance(party, Mapping):
        address = party.get("address")
        return address if isinstance(address, str) else None
    return None


def _tags(doc: Mapping[str, Any]) -> tuple[str, ...]:
    tags = doc.get("tags") or []
    return tuple(dict.fromkeys(str(t) for t in tags))[:MAX_TAGS]


def facts_of(doc: Document, channel_type: str | None = None) -> list[Fact]:
    """Every fact of a stored message, from its timeline (reconciliation)."""
    fields = event_fields(doc, channel_type)
    return [
        fact
        for entry in doc.get("events") or []
        if (fact := _fact(doc, entry.get("type"), entry.get("at"), fields, entry.get("error")))
        is not None
    ]


def fact_of(
    doc: Mapping[str, Any], entry: Mapping[str, Any], channel_type: str | None = None
) -> Fact | None:
    """The fact of one timeline entry (None for entries analytics does not count)."""
    fields = event_fields(doc, channel_type)
    return _fact(doc, entry.get("type"), entry.get("at"), fields, entry.get("error"))


def event_fields(doc: Mapping[str, Any], channel_type: str | None = None) -> dict[str, Any]:
    """What a message event carries for analytics (its ``analytics`` member, which
    only the analytics consumer sees): the dimensions but the country, the number
    the country comes from, and the times the latencies start from."""
    sent = next((e for e in doc.get("events") or [] if e.get("type") == "message.sent"), None)
    fields = {
        "dimensions": _cheap_dimensions(doc, channel_type),
        "accepted_at": doc.get("created_at"),
        "sent_at": sent["at"] if sent else None,
    }
    number = far_number(doc)
    if number is not None:
        fields["number"] = number
    if doc.get("segments"):
        fields["segments"] = doc["segments"]
    return fields


def fact_from_event(event: Mapping[str, Any]) -> Fact | None:
    """The fact an event stands for (None for events analytics does not count, or
    that carry no analytics fields)."""
    fields = event.get(ANALYTICS)
    data = event.get("data")
    if not isinstance(fields, Mapping) or not isinstance(data, Mapping):
        return None
    message = {"id": data.get("message_id"), "tenant_id": event.get("tenant_id"), **data}
    return _fact(message, event.get("type"), event.get("timestamp"), fields, data.get("error"))


def _fact(
    message: Mapping[str, Any], event_type: Any, at: Any, fields: Mapping[str, Any], error: Any
) -> Fact | None:
    """The one reading of a fact: a message's id, tenant and tags, the transition's
    event type, time and error (its timeline entry's), and the analytics fields
    (``event_fields``)."""
    transition = TRANSITION_OF.get(str(event_type))
    if transition is None:
        return None
    accepted = fields.get("accepted_at")
    sent = fields.get("sent_at")
    accepted_at = _at(accepted) if accepted else None
    dims = dict(fields.get("dimensions") or {})
    country = country_of(fields.get("number"))
    if country is not None:
        dims["country"] = country
    if isinstance(error, Mapping) and error.get("code"):
        dims["error"] = error["code"]
    return Fact(
        tenant_id=str(message["tenant_id"]),
        message_id=str(message["id"]),
        transition=transition,
        at=accepted_at if transition == "accepted" and accepted_at else _at(str(at)),
        dims={str(k): str(v) for k, v in dims.items() if k in DIMENSIONS},
        tags=_tags(message),
        accepted_at=accepted_at,
        sent_at=_at(sent) if sent else None,
        segments=int(fields.get("segments") or 0) if transition == "sent" else 0,
    )
