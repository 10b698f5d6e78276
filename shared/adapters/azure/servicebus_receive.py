"""Receiving from Service Bus: a peek-lock receiver per queue, subscription or
dead-letter queue, and each message received held by its lock token until it is
completed, abandoned or dead-lettered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import MessageAlreadySettled, MessageLockLostError

from shared.adapters.azure.servicebus_links import Entity, Handle, billed
from shared.ports import MessageLockLost, ReceivedMessage

# Application properties the broker adds when it dead-letters a message; the port
# reports the reason on its own, and a redriven message must not carry them.
BROKER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
# A held message whose lock ended this long ago (clock skew allowed) is forgotten.
LOCK_GRACE = timedelta(minutes=1)


class Receivers:
    """A receiver per entity received from (never a topic: ``topics`` names them),
    the messages received and not yet settled, and what receiving and settling is
    billed, counted in ``operations``."""

    def __init__(
        self, client: ServiceBusClient, topics: frozenset[str], operations: Counter[str]
    ) -> None:
        self._client = client
        self._topics = topics
        self._operations = operations
        self._receivers: dict[str, Handle[ServiceBusReceiver]] = {}
        # lock token -> (entity, SDK message): settling needs the object received.
        self._held: dict[str, tuple[str, ServiceBusReceivedMessage]] = {}

    async def receive(
        self, entity: str, max_messages: int, wait_seconds: float
    ) -> list[ReceivedMessage]:
        """Up to ``max_messages``, waiting at most ``wait_seconds`` for the first."""
        handle = self._receiver(entity)
        async with handle.lock:
            got = await handle.link.receive_messages(
                max_message_count=max_messages, max_wait_time=wait_seconds
            )
        self._forget_expired()
        received = [self._hold(entity, m) for m in got]
        self._operations[f"receive:{entity}"] += sum(billed(len(m.body)) for m in received) or 1
        return received

    async def settle(
        self, action: str, entity: str, message: ReceivedMessage, reason: str | None = None
    ) -> None:
        """``complete``, ``abandon`` or ``dead_letter`` (with ``reason``) a message
        held; MessageLockLost if it is not held or its lock is gone."""
        held = self._held.get(message.lock_token)
        if held is None or held[0] != entity:
            raise MessageLockLost(f"the lock on {message.message_id} in {entity} is lost")
        sdk_message = held[1]
        handle = self._receivers[entity]
        async with handle.lock:
            self._operations[f"{action}:{entity}"] += 1  # billed even when refused
            try:
                if action == "complete":
                    await handle.link.complete_message(sdk_message)
                elif action == "abandon":
                    await handle.link.abandon_message(sdk_message)
                else:
                    await handle.link.dead_letter_message(sdk_message, reason=reason)
            except (MessageLockLostError, MessageAlreadySettled) as error:
                self._held.pop(message.lock_token, None)
                raise MessageLockLost(
                    f"the lock on {message.message_id} in {entity} is lost"
                ) from error
        # Still held after any other error: the caller may retry while the lock lasts.
        self._held.pop(message.lock_token, None)

    def clear(self) -> None:
        """Forget every receiver (closing the client closes them) and what they hold."""
        self._receivers.clear()
        self._held.clear()

    def _receiver(self, entity: str) -> Handle[ServiceBusReceiver]:
        handle = self._receivers.get(entity)
        if handle is None:
            parsed = Entity.parse(entity)
            sub_queue = ServiceBusSubQueue.DEAD_LETTER if parsed.dead_letter else None
            mode = ServiceBusReceiveMode.PEEK_LOCK
            if parsed.subscription is not None:
                link = self._client.get_subscription_receiver(
                    topic_name=parsed.name,
                    subscription_name=parsed.subscription,
                    sub_queue=sub_queue,
                    receive_mode=mode,
                )
            elif parsed.name in self._topics:
                raise ValueError(f"{entity!r} is a topic: receive from one of its subscriptions")
            else:
                link = self._client.get_queue_receiver(
                    queue_name=parsed.name, sub_queue=sub_queue, receive_mode=mode
                )
            handle = self._receivers[entity] = Handle(link)
        return handle

    def _hold(self, entity: str, message: ServiceBusReceivedMessage) -> ReceivedMessage:
        received = _from_sdk(message)
        self._held[received.lock_token] = (entity, message)
        return received

    def _forget_expired(self) -> None:
        """Drop messages received but never settled once their lock is long gone."""
        cutoff = datetime.now(UTC) - LOCK_GRACE
        for token, (_, message) in list(self._held.items()):
            until = message.locked_until_utc
            if until is not None and until < cutoff:
                del self._held[token]


def _from_sdk(message: ServiceBusReceivedMessage) -> ReceivedMessage:
    token = message.lock_token
    if token is None:
        raise RuntimeError("a peek-locked message came without a lock token")
    return ReceivedMessage(
        message_id=message.message_id or "",
        body=_body(message),
        # The AMQP header counts earlier failed deliveries (zero on the first, AMQP
        # 1.0 §3.2.1); the port counts deliveries from 1, as .NET's DeliveryCount does.
        delivery_count=(message.delivery_count or 0) + 1,
        lock_token=str(token),
        enqueued_at=message.enqueued_time_utc or datetime.now(UTC),
        subject=message.subject,
        application_properties=_properties(message.application_properties),
        dead_letter_reason=message.dead_letter_reason,
    )


def _body(message: ServiceBusReceivedMessage) -> bytes:
    """The payload: the data sections joined (``body`` yields them one by one)."""
    if message.body_type != AmqpMessageBodyType.DATA:
        raise ValueError(f"message {message.message_id} has a {message.body_type} body, not data")
    return b"".join(message.body)


def _properties(raw: Mapping[str | bytes, Any] | None) -> dict[str, str | int]:
    """Received keys and string values arrive as bytes (SDK ``application_properties``)."""
    decoded: dict[str, str | int] = {}
    for key, value in (raw or {}).items():
        name = key.decode() if isinstance(key, bytes) else key
        if name in BROKER_PROPERTIES:
            continue
        if isinstance(value, bytes):
            decoded[name] = value.decode()
        elif isinstance(value, str | int):
            decoded[name] = value
        else:
            decoded[name] = str(value)
    return decoded
