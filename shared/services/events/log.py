"""The events topic's log subscription: a line per event it receives.

By default the subscription's rule lets through only what an operator should see
(`message.failed`, `message.expired`; OCM_EVENTS_LOG_TYPES). Lines carry ids, type,
status and error code — never content, addresses or provider reasons.
"""

from __future__ import annotations

import logging

import orjson

log = logging.getLogger("ocm.events")


def record_dead_lettered(body: bytes, reason: str | None) -> str:
    """An event the log subscription gave up on: said at ERROR (the alert), then
    taken off the dead-letter queue, where nothing expires."""
    try:
        event = orjson.loads(body)
        what = f"event {event.get('id')} {event.get('type')} tenant={event.get('tenant_id')}"
    except (orjson.JSONDecodeError, AttributeError):
        what = "unreadable event"
    log.error("dead-lettered on the events log subscription: %s (%s)", what, reason)
    return "logged"


def record(body: bytes) -> None:
    try:
        event = orjson.loads(body)
        data = event.get("data") or {}
    except (orjson.JSONDecodeError, AttributeError):
        log.warning("unreadable event on the events topic")
        return
    if event.get("type") == "analytics.facts":  # analytics' own, gathered (a log of "*")
        log.debug("analytics facts: %d", len(event.get("facts") or []))
        return
    error = data.get("error") or {}
    log.info(
        "event %s %s message=%s tenant=%s channel=%s status=%s code=%s",
        event.get("id"),
        event.get("type"),
        data.get("message_id"),
        event.get("tenant_id"),
        data.get("channel_id"),
        data.get("status"),
        error.get("code"),
    )
