"""Analytics' own events, gathered: an event only analytics takes (no webhook, no log
wants it) is not published on its own but added to this instance's buffer, sent as
one ``analytics.facts`` message of many once it holds MAX_FACTS or is MAX_AGE
seconds old (and when the platform stops).

Service Bus bills each message sent, received and settled; a delivered message has
three such events, so one topic message per event would cost analytics ~9
operations per message — as much as sending it. Gathered, it costs ~0.05.

What a crash loses (a buffer's last second) is the analytics events of writes that
are stored: the hourly reconciliation recounts them from the message store (as it
does for an event lost between a write and its publication). Counting stays exactly
once either way: each fact has its marker (``rollup``), so a fact that arrives twice,
in one message or in two, counts once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.domain.facts import ANALYTICS
from shared.ports import OutgoingMessage
from shared.services.deps import Deps

log = logging.getLogger(__name__)

TYPE = "analytics.facts"
MAX_FACTS = 200
"""Facts per buffer before it is sent."""
MAX_AGE = 1.0
"""Seconds a fact waits at most (freshness: an event is visible in ~1-2 s)."""
MAX_BYTES = 192 * 1024
"""Bytes of facts per topic message (Service Bus Standard takes 256 KB)."""
MAX_KEPT = 20_000
"""Facts kept while the topic refuses them; older ones are dropped (reconciliation)."""


@dataclass
class FactBuffer:
    facts: list[bytes] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def record(doc: Mapping[str, Any], entry: Mapping[str, Any], fields: Mapping[str, Any]) -> bytes:
    """A timeline entry as analytics reads it (``facts.fact_from_event``): the short
    form of its event, serialised."""
    return orjson.dumps(
        {
            "id": entry["id"],
            "type": entry["type"],
            "timestamp": entry["at"],
            "tenant_id": doc["tenant_id"],
            "data": {
                "message_id": doc["id"],
                "tags": doc.get("tags") or [],
                "error": entry.get("error"),
            },
            ANALYTICS: fields,
        }
    )


def events_of(body: Mapping[str, Any]) -> list[Any]:
    """The events an ``analytics.facts`` message carries ([] for any other body)."""
    found = body.get("facts") if body.get("type") == TYPE else None
    return list(found) if isinstance(found, list) else []


def _buffer(deps: Deps) -> FactBuffer:
    buffer = deps.buffers.get(TYPE)
    if not isinstance(buffer, FactBuffer):
        buffer = deps.buffers[TYPE] = FactBuffer()
        deps.before_close.append(lambda: flush(deps))
    return buffer


async def add(deps: Deps, records: Sequence[bytes]) -> None:
    """Gather these events (``record``) for the next message."""
    if not records:
        return
    buffer = _buffer(deps)
    buffer.facts.extend(records)
    if len(buffer.facts) >= MAX_FACTS:
        await flush(deps)
    elif buffer.timer is None:
        loop = asyncio.get_running_loop()
        buffer.timer = loop.call_later(MAX_AGE, lambda: loop.create_task(_timed_flush(deps)))


async def _timed_flush(deps: Deps) -> None:
    try:
        await flush(deps)
    except Exception:  # kept for the next flush; a background task has no caller
        log.exception("analytics facts could not be sent; kept for the next try")


async def flush(deps: Deps) -> int:
    """Send what the buffer holds now; returns how many facts went out. A failure
    keeps them (up to MAX_KEPT) for the next flush and raises."""
    buffer = _buffer(deps)
    async with buffer.lock:
        if buffer.timer is not None:
            buffer.timer.cancel()
            buffer.timer = None
        facts, buffer.facts = buffer.facts, []
        if not facts:
            return 0
        try:
            await deps.queue.send(deps.settings.OCM_EVENTS_TOPIC, messages(facts))
        except Exception:
            kept = (facts + buffer.facts)[-MAX_KEPT:]
            if len(kept) < len(facts) + len(buffer.facts):
                log.error(
                    "analytics buffer full: %d facts dropped",
                    len(facts) + len(buffer.facts) - len(kept),
                )
            buffer.facts = kept
            raise
        return len(facts)


def messages(facts: Sequence[bytes]) -> list[OutgoingMessage]:
    """The facts as topic messages of at most MAX_BYTES each, with ids made of their
    contents (a message sent twice is one, within duplicate detection)."""
    out: list[OutgoingMessage] = []
    chunk: list[bytes] = []
    size = 0
    for fact in [*facts, None]:
        if chunk and (fact is None or size + len(fact) > MAX_BYTES):
            body = b'{"type":"' + TYPE.encode() + b'","facts":[' + b",".join(chunk) + b"]}"
            digest = hashlib.sha256(body).hexdigest()[:32]
            out.append(
                OutgoingMessage(
                    message_id=f"fct_{digest}",
                    body=body,
                    subject=TYPE,
                    application_properties={"type": TYPE, ANALYTICS: "1"},
                )
            )
            chunk, size = [], 0
        if fact is not None:
            chunk.append(fact)
            size += len(fact) + 1
    return out
