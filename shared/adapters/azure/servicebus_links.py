"""What sending to and receiving from Service Bus share: a port entity name taken
apart, a sender or receiver used one coroutine at a time, and what Service Bus
Standard bills for a message."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from azure.servicebus.aio import ServiceBusReceiver, ServiceBusSender

DEAD_LETTER = "/$DeadLetterQueue"
SUBSCRIPTIONS = "/subscriptions/"
BILLING_CHUNK = 64 * 1024  # Standard bills one operation per started 64 KB of a message


@dataclass(frozen=True, slots=True)
class Entity:
    """A port entity name taken apart: a queue or ``topic/subscriptions/sub``, and
    whether it names the dead-letter sub-queue."""

    name: str
    subscription: str | None = None
    dead_letter: bool = False

    @classmethod
    def parse(cls, entity: str) -> Entity:
        path, dead_letter = entity, entity.endswith(DEAD_LETTER)
        if dead_letter:
            path = entity[: -len(DEAD_LETTER)]
        topic, sep, subscription = path.partition(SUBSCRIPTIONS)
        if not topic or "/" in topic or (sep and (not subscription or "/" in subscription)):
            raise ValueError(f"{entity!r} is not a queue, a subscription or a dead-letter queue")
        return cls(topic, subscription if sep else None, dead_letter)


Link = TypeVar("Link", ServiceBusSender, ServiceBusReceiver)


@dataclass(slots=True)
class Handle(Generic[Link]):
    """A sender or receiver with the lock that keeps its use one coroutine at a time."""

    link: Link
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def billed(size: int) -> int:
    """The operations billed for sending or receiving a message of ``size`` bytes."""
    return max(1, -(-size // BILLING_CHUNK))
