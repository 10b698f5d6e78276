"""The events topic's log subscription: a debug line per event (ids, no content).

At `OCM_LOG_LEVEL=DEBUG` it traces every event; webhooks and analytics get their
own subscriptions."""

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
    if not log.isEnabledFor(logging.DEBUG):
        return
    log.debug(
        "event %s %s message=%s tenant=%s status=%s",
        event.get("id"),
        event.get("type"),
        data.get("message_id"),
        event.get("tenant_id"),
        data.get("status"),
    )
