"""The events topic's log subscription: one structured line per event, no content."""

from __future__ import annotations

import logging

import orjson

log = logging.getLogger("ocm.events")


def record(body: bytes) -> None:
    try:
        event = orjson.loads(body)
        data = event.get("data") or {}
    except (orjson.JSONDecodeError, AttributeError):
        log.warning("unreadable event on the events topic")
        return
    log.info(
        "event %s %s message=%s tenant=%s status=%s",
        event.get("id"),
        event.get("type"),
        data.get("message_id"),
        event.get("tenant_id"),
        data.get("status"),
    )
