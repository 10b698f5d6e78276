"""The queue port: Service Bus queues and topic subscriptions, and where a message
sent to an entity lands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

MAX_MESSAGE_BYTES = 256 * 1024
"""Service Bus Standard's limit for one message (and one batch), which every adapter
keeps, so the embedded queue refuses what Azure would."""


class MessageLockLost(Exception):
    """The peek-lock of a received queue message expired or was settled already."""


class MessageTooLarge(ValueError):
    """``send`` refused these messages (too large for the entity, alone); it sent the
    others of the call first."""

    def __init__(self, entity: str, message_ids: Sequence[str], limit: int) -> None:
        self.entity = entity
        self.message_ids = tuple(message_ids)
        self.limit = limit
        shown = ", ".join(repr(i) for i in self.message_ids[:3])
        super().__init__(
            f"{len(self.message_ids)} message(s) too large for {entity!r} "
            f"(at most {limit} bytes): {shown}"
        )


class DeadLettered(Protocol):
    """What a dead-lettered message says about why (azure.functions.ServiceBusMessage)."""

    @property
    def dead_letter_reason(self) -> str | None: ...
    @property
    def dead_letter_error_description(self) -> str | None: ...
    @property
    def application_properties(self) -> Mapping[str, object]: ...


def dead_letter_reason(msg: DeadLettered) -> str | None:
    """``reason: description`` as the broker gave them, or None.

    In Azure the SDK's ``dead_letter_reason`` is always None: the Service Bus
    extension's trigger metadata has no DeadLetterReason (its binding contract lists
    DeliveryCount, DeadLetterSource, LockToken, … but not the reason). The broker
    puts the reason and its description in the message's application properties.
    """
    properties = msg.application_properties or {}
    said = msg.dead_letter_reason or properties.get("DeadLetterReason")
    detail = msg.dead_letter_error_description or properties.get("DeadLetterErrorDescription")
    parts = [str(p)[:200] for p in (said, detail) if p]
    return ": ".join(parts) or None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to put on a queue or topic.

    ``message_id`` drives duplicate detection: a second message with the same id
    inside the detection window is dropped silently.
    """

    message_id: str
    body: bytes
    scheduled_at: datetime | None = None
    subject: str | None = None
    application_properties: Mapping[str, str | int] = field(default_factory=dict)


def encoded_size(message: OutgoingMessage) -> int:
    """What a message weighs against ``MAX_MESSAGE_BYTES`` in an adapter that does not
    encode it (body, id, subject and properties; AMQP adds a few dozen bytes more)."""
    properties = sum(len(k) + len(str(v)) for k, v in message.application_properties.items())
    return len(message.body) + len(message.message_id) + len(message.subject or "") + properties


def refuse_oversized(
    entity: str, messages: Sequence[OutgoingMessage], limit: int = MAX_MESSAGE_BYTES
) -> tuple[list[OutgoingMessage], MessageTooLarge | None]:
    """The messages that fit, and the error naming those that do not (None: all fit)."""
    fitting = [m for m in messages if encoded_size(m) <= limit]
    if len(fitting) == len(messages):
        return fitting, None
    kept = {id(m) for m in fitting}
    refused = [m.message_id for m in messages if id(m) not in kept]
    return fitting, MessageTooLarge(entity, refused, limit)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    body: bytes
    delivery_count: int
    lock_token: str
    enqueued_at: datetime
    subject: str | None = None
    application_properties: Mapping[str, str | int] = field(default_factory=dict)
    dead_letter_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic subscription. With ``only``, it keeps the messages whose application
    property ``only[0]`` is one of ``only[1]`` — a Service Bus SQL filter rule
    ``<property> IN (...)`` — and the others never reach it."""

    name: str
    only: tuple[str, tuple[str, ...]] | None = None

    def accepts(self, message: OutgoingMessage) -> bool:
        return self.takes(message.application_properties)

    def takes(self, application_properties: Mapping[str, str | int]) -> bool:
        """Whether a message with these application properties passes the rule."""
        if self.only is None:
            return True
        field, values = self.only
        return application_properties.get(field) in values


def reaches_anyone(
    topics: Mapping[str, Sequence[Subscription]],
    entity: str,
    application_properties: Mapping[str, str | int],
) -> bool:
    """Whether a message sent to ``entity`` lands anywhere: a queue always, a topic
    if one of its subscriptions takes it."""
    subs = topics.get(entity)
    return subs is None or any(s.takes(application_properties) for s in subs)


def subscribers(
    topics: Mapping[str, Sequence[Subscription]], entity: str, message: OutgoingMessage
) -> list[str]:
    """The entities a message sent to ``entity`` lands in: itself for a queue, the
    subscriptions that accept it for a topic."""
    subs = topics.get(entity)
    if subs is None:
        return [entity]
    return [f"{entity}/subscriptions/{s.name}" for s in subs if s.accepts(message)]


class Queue(Protocol):
    """Service Bus semantics: at-least-once, peek-lock, delivery count, dead-letter
    after ``max_delivery_count``, scheduled enqueue, duplicate detection by id.

    Entity names: a queue ``q``, a topic subscription ``topic/subscriptions/sub``,
    and the dead-letter sub-queue of either ``<entity>/$DeadLetterQueue``.
    """

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        """Put the messages on ``entity``. One too large for it (``MAX_MESSAGE_BYTES``)
        is refused alone: the others are sent, then ``MessageTooLarge`` names it."""
        ...

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        """Whether a message with these properties sent to ``entity`` would land in any
        queue or subscription, so a sender may skip building one nobody receives.
        True when the adapter cannot tell (Service Bus: its broker applies the rules)."""
        ...

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]: ...

    async def complete(self, entity: str, message: ReceivedMessage) -> None: ...

    async def abandon(self, entity: str, message: ReceivedMessage) -> None: ...

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None: ...
