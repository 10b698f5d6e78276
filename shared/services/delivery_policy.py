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
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.timeline import add_event
from shared.services import channels as channel_service
from shared.services.deps import Deps


async def pace(deps: Deps, channel: Document, now: datetime) -> datetime | None:
    """None if the channel may send now, else when this message's turn comes."""
    rate = channel_service.pace_of(deps, channel)
    if rate <= 0:
        return None
    window = 1.0 if rate >= 1 else float(math.ceil(1 / rate))
    capacity = max(1, int(rate * window))
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


def paused_until(channel: Document, now: datetime) -> datetime | None:
    until = channel.get("throttled_until")
    if until and datetime.fromisoformat(until) > now:
        return datetime.fromisoformat(until)
    return None


async def pause(deps: Deps, channel: Document, seconds: float, now: datetime) -> None:
    """The provider said 429: hold the whole channel for ``seconds``."""
    until = now + timedelta(seconds=max(seconds, 0.0))
    current = paused_until(channel, now)
    if current is not None and current >= until:
        return
    await deps.store.patch(
        CHANNELS, channel["tenant_id"], channel["id"], {"throttled_until": to_utc_text(until)}
    )


async def next_backup(deps: Deps, doc: Document) -> Document | None:
    """The first backup of the message's first channel it has not tried, if usable."""
    origin = doc.get("origin_channel") or doc["channel"]
    first = await channel_service.find_for_sending(deps, doc["tenant_id"], origin)
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
        ):
            return backup
    return None


def fail_over(doc: Document, backup: Document, now: datetime, reason: str) -> None:
    """Move the message to ``backup`` (its default sender, if it has one)."""
    tried: list[str] = doc.setdefault("channels_tried", [doc["channel"]])
    doc.setdefault("origin_channel", doc["channel"])
    moved = {"from": doc["channel"], "to": backup["name"], "reason": reason}
    tried.append(backup["name"])
    doc["channel"], doc["channel_id"] = backup["name"], backup["id"]
    doc["provider"] = backup["provider"]
    if backup.get("default_sender"):
        doc["sender"] = backup["default_sender"]
    doc["channel_failures"] = 0
    add_event(doc, "message.retrying", now, failover=moved)


def failures_reached(deps: Deps, doc: Document, channel: Document) -> bool:
    """Whether this transient failure is the channel's last before failover."""
    doc["channel_failures"] = int(doc.get("channel_failures") or 0) + 1
    policy = channel_service.policy_of(channel)
    return bool(policy.backups) and doc["channel_failures"] >= policy.failover_after
