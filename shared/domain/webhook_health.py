"""An endpoint's health, as rules about its subscription document: a delivery that
succeeds ends a failing period; a 410 disables the subscription at once; other
failures start a failing period, warn once past ``warn_after`` and disable past
``disable_after``.

A rule changes the subscription in place and returns the platform events to publish
(``webhook.endpoint.failing`` / ``.disabled``), or None when it has nothing to change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from shared.domain.messages import to_utc_text
from shared.domain.models import Document

Events = list[tuple[str, dict[str, Any]]]
"""Platform events to publish: (type, data)."""
Change = Callable[[Document], Events | None]
"""Changes a subscription in place and returns its events, or None if it has nothing
to change."""

GONE_REASON = "410 Gone from the endpoint"


def after_attempt(
    delivery: Document,
    now: datetime,
    *,
    warn_after: timedelta,
    disable_after: timedelta,
    redelivered: bool = False,
) -> Change:
    """What the delivery's last recorded attempt does to its subscription's health.

    A redelivered job changes the health only if nothing changed the subscription
    since its attempt: a later attempt's outcome (another delivery's) knows better."""
    last = (delivery.get("attempts") or [{}])[-1]
    change: Change
    if delivery["status"] == "delivered":
        change = recovered
    elif last.get("status_code") == 410:
        change = partial(disable, reason=GONE_REASON)
    else:
        error = str(last.get("error") or "failed")
        change = partial(
            failing, now=now, error=error, warn_after=warn_after, disable_after=disable_after
        )
    if redelivered:
        change = partial(_unless_newer, change=change, attempted=str(last.get("at") or ""))
    return change


def _unless_newer(sub: Document, *, change: Change, attempted: str) -> Events | None:
    if str(sub.get("updated_at") or "") > attempted:
        return None
    return change(sub)


def _about(sub: Document, reason: str) -> dict[str, Any]:
    """The data of a ``webhook.endpoint.*`` event."""
    return {
        "webhook_id": sub["id"],
        "url": sub.get("url"),
        "failing_since": sub.get("failing_since"),
        "reason": reason,
    }


def recovered(sub: Document) -> Events | None:
    if sub.get("failing_since") is None and not sub.get("failing_warned"):
        return None
    sub["failing_since"] = None
    sub["failing_warned"] = False
    return []


def disable(sub: Document, *, reason: str) -> Events | None:
    if not sub.get("enabled", True):
        return None
    sub["enabled"] = False
    sub["disabled_reason"] = reason
    return [("webhook.endpoint.disabled", _about(sub, reason))]


def failing(
    sub: Document, *, now: datetime, error: str, warn_after: timedelta, disable_after: timedelta
) -> Events | None:
    """Start the failing period, warn once past ``warn_after``, disable past
    ``disable_after`` (a failing period is ended by any success)."""
    if not sub.get("enabled", True):
        return None
    started = sub.get("failing_since") is None
    if started:
        sub["failing_since"] = to_utc_text(now)
    since = datetime.fromisoformat(str(sub["failing_since"]))
    if now - since >= disable_after:
        return disable(sub, reason=f"failing since {sub['failing_since']}")
    if now - since >= warn_after and not sub.get("failing_warned"):
        sub["failing_warned"] = True
        until = to_utc_text(since + disable_after)
        reason = f"{error}; disabled at {until} unless a delivery succeeds before"
        return [("webhook.endpoint.failing", _about(sub, reason))]
    return [] if started else None
