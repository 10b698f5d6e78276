"""Message statuses and the rule that they never move backwards."""

from __future__ import annotations

from typing import Literal, get_args

Status = Literal[
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "expired",
    "cancelled",
    "received",
]
STATUSES: tuple[Status, ...] = get_args(Status)

EventType = Literal[
    "message.scheduled",
    "message.queued",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "message.expired",
    "message.cancelled",
    "message.received",
    "message.retrying",
    "message.fallback",
]

_PROGRESS: dict[str, int] = {
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
}
PENDING: frozenset[str] = frozenset({"scheduled", "queued"})
"""Statuses a message can be cancelled or expired from."""
FINAL: frozenset[str] = frozenset({"read", "failed", "expired", "cancelled", "received"})
"""No status change is possible after these (a late receipt is recorded only)."""


def can_move(current: str, new: str) -> bool:
    """True if ``current → new`` is forward progress.

    ``sending → queued`` is allowed: it is a retry, and ``sending`` is internal.
    A delivery failure may follow ``sent`` but never ``delivered``.
    """
    if current in FINAL or current == new:
        return False
    if new in ("expired", "cancelled"):
        return current in PENDING
    if new == "failed":
        return current in ("scheduled", "queued", "sending", "sent")
    if current == "sending" and new == "queued":
        return True
    if new in _PROGRESS and current in _PROGRESS:
        return _PROGRESS[new] > _PROGRESS[current]
    return False


def emits_event(status: str) -> bool:
    """``sending`` is internal; every other status change is an event."""
    return status != "sending"
