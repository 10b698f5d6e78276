"""Queue port on Azure Service Bus (``azure.servicebus.aio``).

In Azure the Functions host receives and settles trigger messages itself; this
adapter publishes (an output binding can set neither the message id, which
duplicate detection keys on, nor a scheduled enqueue time) and, for tooling and the
live contract suite, receives, settles and redrives dead letters.

Senders and receivers are not coroutine-safe (SDK README, "Thread safety"), so each
one is used under its own lock.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.servicebus import (
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
)

from shared.adapters.azure.servicebus_links import DEAD_LETTER, Entity, Handle, billed
from shared.adapters.azure.servicebus_send import Senders
from shared.ports import MessageLockLost, OutgoingMessage, ReceivedMessage

log = logging.getLogger(__name__)

# Application properties the broker adds when it dead-letters a message; the port
# reports the reason on its own, and a redriven message must not carry them.
BROKER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
MAX_MESSAGE_ID = 128  # Service Bus refuses longer message ids
# A held message whose lock ended this long ago (clock skew allowed) is forgotten.
LOCK_GRACE = timedelta(minutes=1)
SENDERS_PER_ENTITY = 4


def build_service_bus_client(
    fully_qualified_namespace: str | None,
    connection_string: str | None,
    credential: AsyncTokenCredential | None,
) -> ServiceBusClient:
    """From a connection string when one is set (the emulator, a live test
    namespace), else identity-based on the namespace — the order the Functions host
    follows for the same ``ServiceBusConnection`` settings, so the triggers and the
    publisher always reach the same namespace."""
    if connection_string:
        return ServiceBusClient.from_connection_string(connection_string)
    if fully_qualified_namespace:
        if credential is None:
            raise ValueError("an identity-based Service Bus connection needs a credential")
        return ServiceBusClient(fully_qualified_namespace, credential)
    raise ValueError("Service Bus needs a fully qualified namespace or a connection string")


class ServiceBusQueue:
    """Queue port over one ``ServiceBusClient``; ``topics`` names the entities that
    are topics (the rest are queues). Subscriptions and their filter rules, lock
    duration, maximum delivery count and duplicate detection are properties of the
    entities (infra/), not of this adapter.

    ``operations`` meters what Service Bus Standard bills, by kind and entity
    (``send:outbound``, ``receive:…``, ``complete:…``), after its pricing FAQ: a
    send or a receive of a message is one operation per started 64 KB of it (sent
    in batches or not), an empty receive is one, and so is each complete, abandon
    or dead-letter. ``credential``, when given, is owned by the queue and closed
    with it.
    """

    def __init__(
        self,
        client: ServiceBusClient,
        *,
        topics: Iterable[str] = (),
        credential: AsyncTokenCredential | None = None,
        receive_wait_seconds: float = 5.0,
    ) -> None:
        self._client = client
        self._topics = frozenset(topics)
        self._credential = credential
        self._wait = receive_wait_seconds
        self.operations: Counter[str] = Counter()
        self._senders = Senders(client, self._topics, self.operations, SENDERS_PER_ENTITY)
        self._receivers: dict[str, Handle[ServiceBusReceiver]] = {}
        # lock token -> (entity, SDK message): settling needs the object received.
        self._held: dict[str, tuple[str, ServiceBusReceivedMessage]] = {}

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        """Always True: subscriptions and their rules live in the namespace."""
        return True

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send in as few batches as the entity's size limit allows; a message too
        large for any batch raises ValueError before anything is sent."""
        if not messages:
            return
        batches = await self._senders.send(entity, messages)
        log.debug("sent %d message(s) to %s in %d batch(es)", len(messages), entity, batches)

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` in peek-lock mode, waiting at most
        ``receive_wait_seconds`` for the first.

        ``lock_seconds`` is ignored: Service Bus locks for the entity's own
        ``LockDuration`` (set in infra/), and a client cannot choose it per receive.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        handle = self._receiver(entity)
        async with handle.lock:
            got = await handle.link.receive_messages(
                max_message_count=max_messages, max_wait_time=self._wait
            )
        self._forget_expired()
        received = [self._hold(entity, m) for m in got]
        self.operations[f"receive:{entity}"] += sum(billed(len(m.body)) for m in received) or 1
        log.debug("received %d message(s) from %s", len(received), entity)
        return received

    async def complete(self, entity: str, message: ReceivedMessage) -> None:
        await self._settle("complete", entity, message)

    async def abandon(self, entity: str, message: ReceivedMessage) -> None:
        await self._settle("abandon", entity, message)

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None:
        await self._settle("dead_letter", entity, message, reason)

    async def redrive(self, entity: str, *, max_messages: int = 100) -> int:
        """Move up to ``max_messages`` dead letters of queue ``entity`` back to it;
        returns how many moved.

        Each goes back as a new message (``<id>:redrive-<random>``, so duplicate
        detection keeps it) carrying the same body, subject and properties; its dead
        letter is completed only once the new message is sent (a crash in between
        redrives it twice: handlers are idempotent). A subscription cannot be
        redriven: a message sent to its topic would reach every subscription.
        """
        target = Entity.parse(entity)
        if target.subscription is not None or target.dead_letter:
            raise ValueError(f"only a queue can be redriven, not {entity!r}")
        dead_letters = entity + DEAD_LETTER
        moved = 0
        while moved < max_messages:
            batch = await self.receive(dead_letters, max_messages=max_messages - moved)
            if not batch:
                break
            await self.send(entity, [_resend(m) for m in batch])
            for message in batch:
                await self.complete(dead_letters, message)
            moved += len(batch)
        log.debug("redrove %d message(s) of %s", moved, entity)
        return moved

    async def close(self) -> None:
        """Close the client (which closes every sender and receiver it spawned) and
        the credential the queue owns."""
        self._senders.clear()
        self._receivers.clear()
        self._held.clear()
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()

    # --- receiving and settling ------------------------------------------------------

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

    async def _settle(
        self, action: str, entity: str, message: ReceivedMessage, reason: str | None = None
    ) -> None:
        held = self._held.get(message.lock_token)
        if held is None or held[0] != entity:
            raise MessageLockLost(f"the lock on {message.message_id} in {entity} is lost")
        sdk_message = held[1]
        handle = self._receivers[entity]
        async with handle.lock:
            self.operations[f"{action}:{entity}"] += 1  # billed even when refused
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


def _resend(dead: ReceivedMessage) -> OutgoingMessage:
    suffix = f":redrive-{uuid.uuid4().hex[:12]}"
    return OutgoingMessage(
        message_id=dead.message_id[: MAX_MESSAGE_ID - len(suffix)] + suffix,
        body=dead.body,
        subject=dead.subject,
        application_properties=dead.application_properties,
    )
