"""What dispatch does around a provider call: pacing, pauses after a 429, failover.

**Pacing.** A channel is held to ``policy.rate_per_second`` (else its provider's
documented default) across every instance: sends take numbered tickets on a shared
counter per channel and window (a second, or ``1/rate`` seconds for slower rates);
a ticket past the window's capacity is told the window it falls into, and the
message waits for it without using an attempt.

**Pauses.** A provider's 429 pauses the whole channel until its Retry-After
(``throttled_until`` on the channel): messages due meanwhile wait, without using
attempts. A 429 that concerns one receiver (a Web Push service's) holds only its
message (``details["per_receiver"]``).

**Failover.** A channel's ``policy.backups`` take over, in order, from a message
that failed transiently ``policy.failover_after`` times on its channel, or whose
channel is paused; the move is recorded in the message's timeline.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from shared.containers import CHANNELS, COUNTERS
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.retry import MAX_RETRY_AFTER
from shared.domain.timeline import add_event
from shared.services.channels import channels as channel_service
from shared.services.deps import Deps


async def pace(deps: Deps, channel: Document, now: datetime) -> datetime | None:
    """None if the channel may send now, else when this message's turn comes."""
    rate = channel_service.pace_of(deps, channel)
    if rate <= 0:
        return None
    window, capacity = _window(rate)
    index = int(now.timestamp() // window)
    ticket = await deps.store.increment(
        COUNTERS,
        channel["tenant_id"],
        f"pace_{channel['id']}_{index}",
        "n",
        1,
        ttl=int(window) + 60,
    )
    if ticket <= capacity:
        return None
    ahead = (ticket - 1) // capacity
    return datetime.fromtimestamp((index + ahead) * window, UTC)


def _window(rate: float) -> tuple[float, int]:
    """The shortest window (up to a minute) holding a whole number of sends at
    ``rate`` (1.5/s: 3 every 2 s), and that number; else the rate rounded down."""
    for seconds in range(1, 61):
        sends = rate * seconds
        if sends >= 1 and abs(sends - round(sends)) < 1e-9:
            return float(seconds), round(sends)
    seconds = max(1, math.ceil(1 / rate))
    return float(seconds), max(1, int(rate * seconds))


def paused_until(channel: Document, now: datetime) -> datetime | None:
    text = channel.get("throttled_until")
    until = datetime.fromisoformat(text) if text else None
    return until if until is not None and until > now else None


async def pause(deps: Deps, channel: Document, seconds: float, now: datetime) -> None:
    """The provider said 429: hold the whole channel for ``seconds``."""
    until = now + timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER))
    current = paused_until(channel, now)
    if current is not None and current >= until:
        return
    await deps.store.patch(
        CHANNELS, channel["tenant_id"], channel["id"], {"throttled_until": to_utc_text(until)}
    )


async def origin_of(deps: Deps, doc: MessageDocument) -> Document | None:
    """The channel the message was sent to first: its policy governs failover."""
    name = doc.get("origin_channel") or doc["channel"]
    return await channel_service.find_for_sending(deps, doc["tenant_id"], name)


async def next_backup(deps: Deps, doc: MessageDocument) -> Document | None:
    """The first backup of the message's first channel it has not tried, if usable:
    active, not paused, and able to send as someone (its default sender)."""
    first = await origin_of(deps, doc)
    if first is None:
        return None
    tried = set(doc.get("channels_tried") or [doc["channel"]])
    now = deps.clock.now()
    for name in channel_service.policy_of(first).backups:
        if name in tried:
            continue
        backup = await channel_service.find_for_sending(deps, doc["tenant_id"], name)
        if (
            backup is not None
            and backup["status"] == "active"
            and paused_until(backup, now) is None
            and _can_send_as(deps, backup)
        ):
            return backup
    return None


def _can_send_as(deps: Deps, backup: Document) -> bool:
    """A backup sends as its default sender; without one, only where no sender is
    needed (push, the sandbox) — another channel's sender is not its to use."""
    if backup.get("default_sender") or backup["provider"] == "sandbox":
        return True
    spec = deps.catalog.specs.get((backup["type"], backup["provider"]))
    return spec is not None and not spec.sender_types


def fail_over(doc: MessageDocument, backup: Document, now: datetime, reason: str) -> None:
    """Move the message to ``backup``, sending as its default sender."""
    tried = doc.setdefault("channels_tried", [doc["channel"]])
    doc.setdefault("origin_channel", doc["channel"])
    doc.setdefault("origin_provider", doc["provider"])  # analytics counts it under these
    doc.setdefault("origin_sender", doc.get("sender"))
    moved = {"from": doc["channel"], "to": backup["name"], "reason": reason}
    tried.append(backup["name"])
    doc["channel"], doc["channel_id"] = backup["name"], backup["id"]
    doc["provider"] = backup["provider"]
    doc["sender"] = backup.get("default_sender")
    doc["channel_failures"] = 0
    add_event(doc, "message.retrying", now, failover=moved)


def failures_reached(doc: MessageDocument, failover_after: int) -> bool:
    """Count this transient failure on the message's channel; whether it is the last
    one before failover."""
    failures = doc["channel_failures"] = doc.get("channel_failures", 0) + 1
    return failures >= failover_after
