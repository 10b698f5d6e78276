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

from azure.core.credentials_async import AsyncTokenCredential
from azure.servicebus.aio import ServiceBusClient

from shared.adapters.azure.servicebus_links import DEAD_LETTER, Entity
from shared.adapters.azure.servicebus_receive import Receivers
from shared.adapters.azure.servicebus_send import Senders
from shared.ports import OutgoingMessage, ReceivedMessage, Subscription, reaches_anyone

log = logging.getLogger(__name__)

MAX_MESSAGE_ID = 128  # Service Bus refuses longer message ids
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
    entities (infra/), not of this adapter; ``subscriptions``, the topics' rules as
    the code declares them (the same as infra/'s SQL filters), lets
    ``reaches_anyone`` answer as the broker would.

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
        subscriptions: Mapping[str, Sequence[Subscription]] | None = None,
        credential: AsyncTokenCredential | None = None,
        receive_wait_seconds: float = 5.0,
    ) -> None:
        self._client = client
        self._subscriptions = subscriptions
        self._credential = credential
        self._wait = receive_wait_seconds
        self.operations: Counter[str] = Counter()
        topic_names = frozenset(topics)
        self._senders = Senders(client, topic_names, self.operations, SENDERS_PER_ENTITY)
        self._receivers = Receivers(client, topic_names, self.operations)

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        """By the ``subscriptions`` rules the adapter was given — the same rules as
        the namespace's SQL filters (infra/, checked by tests/infra) — so the outbox
        builds and sends no event that no subscription keeps; True without them."""
        if self._subscriptions is None:
            return True
        return reaches_anyone(self._subscriptions, entity, application_properties)

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send in as few batches as the entity's size limit allows; a message too
        large for any batch is refused alone (``MessageTooLarge``, once the others
        are sent)."""
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
        received = await self._receivers.receive(entity, max_messages, self._wait)
        log.debug("received %d message(s) from %s", len(received), entity)
        return received

    async def complete(self, entity: str, message: ReceivedMessage) -> None:
        await self._receivers.settle("complete", entity, message)

    async def abandon(self, entity: str, message: ReceivedMessage) -> None:
        await self._receivers.settle("abandon", entity, message)

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None:
        await self._receivers.settle("dead_letter", entity, message, reason)

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
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()


def _resend(dead: ReceivedMessage) -> OutgoingMessage:
    suffix = f":redrive-{uuid.uuid4().hex[:12]}"
    return OutgoingMessage(
        message_id=dead.message_id[: MAX_MESSAGE_ID - len(suffix)] + suffix,
        body=dead.body,
        subject=dead.subject,
        application_properties=dead.application_properties,
    )
