"""Sending to Service Bus: a pool of senders per queue or topic, messages packed
into as few batches as fit, and their scheduled enqueue times."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender
from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusServerBusyError

from shared.adapters.azure.servicebus_links import Entity, Handle, billed
from shared.ports import MessageTooLarge, OutgoingMessage, Throttled

SERVER_BUSY_WAIT = 10.0


@dataclass(slots=True)
class _Outgoing:
    """A batch to send, and the operations it will be billed."""

    batch: ServiceBusMessageBatch
    billed: int = 0


class Senders:
    """Up to ``per_entity`` senders per queue or topic (``topics`` names the topics),
    each used by one send at a time; what they send is metered in ``operations``."""

    def __init__(
        self,
        client: ServiceBusClient,
        topics: frozenset[str],
        operations: Counter[str],
        per_entity: int,
    ) -> None:
        self._client = client
        self._topics = topics
        self._operations = operations
        self._per_entity = per_entity
        # Senders are not coroutine-safe, so each is used by one send at a time;
        # a few per entity let concurrent requests send in parallel.
        self._pools: dict[str, list[Handle[ServiceBusSender]]] = {}
        self._turns = itertools.count()

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> int:
        """Send in as few batches as fit; how many batches were sent. A message that
        fits in no batch is left out, and once the others are sent
        ``MessageTooLarge`` names it."""
        handle = self._sender(entity)
        async with handle.lock:
            batches, refused = await _batches(handle.link, messages)
            sent = [b for b in batches if len(b.batch) > 0]
            for outgoing in sent:
                try:
                    await handle.link.send_messages(outgoing.batch)
                except ServiceBusServerBusyError as exc:
                    # Past the SDK's own retries; "Throttling operations on Azure
                    # Service Bus": a throttled client should wait about 10 seconds.
                    raise Throttled(f"Service Bus is busy ({entity})", SERVER_BUSY_WAIT) from exc
                self._operations[f"send:{entity}"] += outgoing.billed
        if refused:
            raise MessageTooLarge(entity, refused, batches[0].batch.max_size_in_bytes)
        return len(sent)

    def clear(self) -> None:
        """Forget every sender (closing the client closes them)."""
        self._pools.clear()

    def _sender(self, entity: str) -> Handle[ServiceBusSender]:
        """An idle sender of ``entity`` if there is one, else a new one while the
        entity has fewer than ``per_entity``, else the next in turn."""
        pool = self._pools.get(entity)
        if pool is None:
            parsed = Entity.parse(entity)
            if parsed.subscription is not None or parsed.dead_letter:
                raise ValueError(f"cannot send to {entity!r}: send to its queue or topic")
            pool = self._pools[entity] = []
        idle = next((h for h in pool if not h.lock.locked()), None)
        if idle is not None:
            return idle
        if len(pool) < self._per_entity:
            if entity in self._topics:
                link = self._client.get_topic_sender(topic_name=entity)
            else:
                link = self._client.get_queue_sender(queue_name=entity)
            pool.append(Handle(link))
            return pool[-1]
        return pool[next(self._turns) % len(pool)]


async def _batches(
    sender: ServiceBusSender, messages: Sequence[OutgoingMessage]
) -> tuple[list[_Outgoing], list[str]]:
    """The batches to send (one may be empty), and the ids of the messages that fit
    in none."""
    batches = [_Outgoing(await sender.create_message_batch())]
    refused: list[str] = []
    for message in messages:
        sdk_message = _to_sdk(message)
        size = _added(batches[-1].batch, sdk_message)
        if size is None and len(batches[-1].batch) > 0:  # full: the message starts another
            batches.append(_Outgoing(await sender.create_message_batch()))
            size = _added(batches[-1].batch, sdk_message)
        if size is None:  # too large even alone
            refused.append(message.message_id)
            if len(batches) > 1 and len(batches[-1].batch) == 0:
                batches.pop()  # the others go on filling the batch before
            continue
        batches[-1].billed += billed(size)
    return batches, refused


def _to_sdk(message: OutgoingMessage) -> ServiceBusMessage:
    properties: dict[str | bytes, Any] = {k: v for k, v in message.application_properties.items()}
    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        subject=message.subject,
        application_properties=properties or None,
        # Honoured on the ordinary send path, batches included ("Message sequencing
        # and timestamps", Scheduled messages); schedule_messages is only needed to
        # cancel later, by sequence number.
        scheduled_enqueue_time_utc=_aware(message.scheduled_at),
    )


def _aware(moment: datetime | None) -> datetime | None:
    """The SDK sends the instant (``timestamp()``): a naive time would read as local."""
    if moment is not None and moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment


def _added(batch: ServiceBusMessageBatch, message: ServiceBusMessage) -> int | None:
    """Add the message to the batch; its encoded size, or None if it does not fit."""
    before = batch.size_in_bytes
    try:
        batch.add_message(message)
    except MessageSizeExceededError:
        return None
    return batch.size_in_bytes - before
