"""Fakes of the Azure SDK clients the Azure adapters use, for tests at the SDK boundary.

No emulator of Service Bus or Key Vault installs on our machines, so each
fake duck-types the few client methods its adapter calls and hands back the SDK's own
objects: real ``ServiceBusMessageBatch``es (real size accounting) and real
``ServiceBusReceivedMessage``s, decoded by the SDK from AMQP 1.0 bytes encoded here
after the OASIS specification, as the broker puts them on the wire; real
``KeyVaultSecret`` and ``DeletedSecret`` models.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets import DeletedSecret, KeyVaultSecret, SecretProperties
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    ServiceBusServerBusyError,
)

DEAD_LETTER = "/$DeadLetterQueue"

# --- AMQP 1.0 encoding (OASIS AMQP 1.0, part 1 "Types", part 3 "Messaging") -------------


class Symbol(str):
    """An AMQP symbol (annotation keys are symbols, not strings)."""


class UInt(int):
    """An AMQP uint (the header's delivery-count)."""


def amqp(value: Any) -> bytes:
    """One value in its 32-bit-length encoding (the decoder takes every width)."""
    if value is None:
        return b"\x40"
    if isinstance(value, bool):
        return b"\x41" if value else b"\x42"
    if isinstance(value, UInt):
        return b"\x70" + struct.pack(">I", value)
    if isinstance(value, int):
        return b"\x81" + struct.pack(">q", value)
    if isinstance(value, datetime):
        return b"\x83" + struct.pack(">q", round(value.timestamp() * 1000))
    if isinstance(value, uuid.UUID):
        return b"\x98" + value.bytes
    if isinstance(value, bytes):
        return b"\xb0" + struct.pack(">I", len(value)) + value
    if isinstance(value, Symbol):
        return b"\xb3" + _sized(value.encode())
    if isinstance(value, str):
        return b"\xb1" + _sized(value.encode())
    if isinstance(value, list):
        body = b"".join(amqp(v) for v in value)
        return b"\xd0" + struct.pack(">II", len(body) + 4, len(value)) + body
    if isinstance(value, dict):
        body = b"".join(amqp(k) + amqp(v) for k, v in value.items())
        return b"\xd1" + struct.pack(">II", len(body) + 4, 2 * len(value)) + body
    raise TypeError(f"no AMQP encoding here for {type(value).__name__}")


def _sized(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def section(code: int, value: Any) -> bytes:
    """A message section: a value described by its ulong code (§3.2)."""
    return b"\x00\x53" + bytes([code]) + amqp(value)


def received_message(
    *,
    message_id: str,
    sections: Sequence[bytes],
    lock_token: uuid.UUID,
    delivery_count: int = 0,
    enqueued_at: datetime,
    locked_until: datetime,
    sequence_number: int = 1,
    subject: str | None = None,
    properties: Mapping[str, Any] | None = None,
    value: Any = None,
) -> ServiceBusReceivedMessage:
    """A peek-locked message as Service Bus delivers it: a body of data ``sections``,
    or else an AMQP ``value``. ``delivery_count`` is the header's: earlier failed
    deliveries, zero on the first (§3.2.1)."""
    payload = (
        section(0x70, [True, None, None, None, UInt(delivery_count)])
        + section(0x71, {Symbol("x-opt-lock-token"): lock_token})
        + section(
            0x72,
            {
                Symbol("x-opt-enqueued-time"): enqueued_at,
                Symbol("x-opt-sequence-number"): sequence_number,
                Symbol("x-opt-locked-until"): locked_until,
            },
        )
        + section(0x73, [message_id, None, None, subject])
        + (section(0x74, dict(properties)) if properties else b"")
        + b"".join(section(0x75, data) for data in sections)
        + (section(0x77, value) if value is not None else b"")
    )
    return ServiceBusReceivedMessage.from_bytes(payload)


# --- Service Bus ----------------------------------------------------------------------


class RecordingBatch(ServiceBusMessageBatch):
    """The SDK's batch (its size accounting), keeping the messages added."""

    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.added: list[ServiceBusMessage] = []

    def add_message(self, message: Any) -> None:
        super().add_message(message)
        self.added.append(message)


@dataclass
class Stored:
    """A message in the fake broker."""

    message_id: str
    sections: list[bytes]
    subject: str | None
    properties: dict[str, Any]
    enqueued_at: datetime
    sequence_number: int
    delivery_count: int = 0
    lock_token: uuid.UUID | None = None
    locked_until: datetime | None = None
    value: Any = None


class FakeSender:
    def __init__(self, broker: FakeServiceBusClient, entity: str, targets: list[str]) -> None:
        self.broker, self.entity, self.targets = broker, entity, targets
        self.batches: list[list[ServiceBusMessage]] = []
        self.closed = False

    async def create_message_batch(self, max_size_in_bytes: int | None = None) -> RecordingBatch:
        return RecordingBatch(max_size_in_bytes or self.broker.max_batch_bytes)

    async def send_messages(self, message: Any) -> None:
        assert isinstance(message, RecordingBatch), "the adapter sends batches it built"
        await asyncio.sleep(0)
        if self.broker.busy > 0:
            self.broker.busy -= 1
            raise ServiceBusServerBusyError(
                message="The request was terminated because the entity is being throttled."
            )
        self.batches.append(list(message.added))
        for sent in message.added:
            for target in self.targets:
                self.broker.put(
                    target,
                    message_id=sent.message_id or "",
                    sections=list(sent.body),
                    subject=sent.subject,
                    properties={str(k): v for k, v in (sent.application_properties or {}).items()},
                )

    async def close(self) -> None:
        self.closed = True


class FakeReceiver:
    def __init__(self, broker: FakeServiceBusClient, path: str) -> None:
        self.broker, self.path = broker, path
        self.calls: list[dict[str, Any]] = []
        self.settled: list[tuple[str, str]] = []  # (action, message id)
        self._settled_tokens: set[uuid.UUID] = set()
        self.fail_next: Exception | None = None  # raised by the next settlement
        self.closed = False

    async def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        self.calls.append({"max_message_count": max_message_count, "max_wait_time": max_wait_time})
        free = [m for m in self.broker.entities[self.path] if m.lock_token is None]
        got = []
        for stored in free[: max_message_count or 0]:
            stored.lock_token = uuid.uuid4()
            stored.locked_until = self.broker.now + self.broker.lock_duration
            got.append(self._deliver(stored))
        return got

    async def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        stored = await self._locked(message, "complete")
        self.broker.entities[self.path].remove(stored)

    async def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        stored = await self._locked(message, "abandon")
        stored.lock_token = stored.locked_until = None
        stored.delivery_count += 1

    async def dead_letter_message(
        self,
        message: ServiceBusReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None:
        stored = await self._locked(message, "dead_letter")
        self.broker.entities[self.path].remove(stored)
        stored.lock_token = stored.locked_until = None
        stored.properties |= {
            "DeadLetterReason": reason or "",
            "DeadLetterErrorDescription": error_description or "",
        }
        self.broker.entities[self.path + DEAD_LETTER].append(stored)

    async def close(self) -> None:
        self.closed = True

    async def _locked(self, message: ServiceBusReceivedMessage, action: str) -> Stored:
        await asyncio.sleep(0)  # a round trip: other coroutines run meanwhile
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        token = message.lock_token
        if token in self._settled_tokens:
            raise MessageAlreadySettled(action=action)
        for stored in self.broker.entities[self.path]:
            if stored.lock_token == token:
                assert isinstance(token, uuid.UUID)
                self._settled_tokens.add(token)
                self.settled.append((action, stored.message_id))
                return stored
        raise MessageLockLostError()

    def _deliver(self, stored: Stored) -> ServiceBusReceivedMessage:
        assert stored.lock_token is not None and stored.locked_until is not None
        return received_message(
            message_id=stored.message_id,
            sections=stored.sections,
            lock_token=stored.lock_token,
            delivery_count=stored.delivery_count,
            enqueued_at=stored.enqueued_at,
            locked_until=stored.locked_until,
            sequence_number=stored.sequence_number,
            subject=stored.subject,
            properties=stored.properties,
            value=stored.value,
        )


class FakeServiceBusClient:
    """Duck-types the part of ``azure.servicebus.aio.ServiceBusClient`` the adapter uses,
    over an in-memory broker of queues, topics fanned out to ``subscriptions``, and
    dead-letter sub-queues. It neither hides scheduled messages nor drops duplicates:
    the tests read those settings off the SDK messages the adapter built."""

    def __init__(
        self,
        *,
        subscriptions: Mapping[str, Sequence[str]] | None = None,
        max_batch_bytes: int = 256 * 1024,
        lock_duration: timedelta = timedelta(seconds=60),
    ) -> None:
        self.subscriptions = dict(subscriptions or {})
        self.max_batch_bytes = max_batch_bytes
        self.lock_duration = lock_duration
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.entities: dict[str, list[Stored]] = defaultdict(list)
        self.opened: list[tuple[Any, ...]] = []
        self.senders: dict[str, FakeSender] = {}
        self.receivers: dict[str, FakeReceiver] = {}
        self.closed = False
        self.busy = 0
        """Sends answered ServerBusy from now on (the namespace is throttling)."""
        self._sequence = itertools.count(1)

    def put(
        self,
        path: str,
        *,
        message_id: str,
        sections: list[bytes],
        subject: str | None = None,
        properties: dict[str, Any] | None = None,
        value: Any = None,
    ) -> None:
        number = next(self._sequence)
        self.entities[path].append(
            Stored(message_id, sections, subject, properties or {}, self.now, number, value=value)
        )

    def expire_locks(self, path: str) -> None:
        """What the broker does when locks run out: the messages are free again."""
        for stored in self.entities[path]:
            if stored.lock_token is not None:
                stored.lock_token = stored.locked_until = None
                stored.delivery_count += 1

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> FakeSender:
        self.opened.append(("queue_sender", queue_name))
        return self._sender(queue_name, [queue_name])

    def get_topic_sender(self, topic_name: str, **kwargs: Any) -> FakeSender:
        self.opened.append(("topic_sender", topic_name))
        subs = self.subscriptions[topic_name]
        return self._sender(topic_name, [f"{topic_name}/subscriptions/{s}" for s in subs])

    def get_queue_receiver(
        self,
        queue_name: str,
        *,
        sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
        **kwargs: Any,
    ) -> FakeReceiver:
        self.opened.append(("queue_receiver", queue_name, sub_queue, receive_mode))
        return self._receiver(queue_name, sub_queue)

    def get_subscription_receiver(
        self,
        topic_name: str,
        subscription_name: str,
        *,
        sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
        **kwargs: Any,
    ) -> FakeReceiver:
        self.opened.append(
            ("subscription_receiver", topic_name, subscription_name, sub_queue, receive_mode)
        )
        return self._receiver(f"{topic_name}/subscriptions/{subscription_name}", sub_queue)

    async def close(self) -> None:
        """Like the SDK's: every sender and receiver spawned is closed too."""
        for sender in self.senders.values():
            await sender.close()
        for receiver in self.receivers.values():
            await receiver.close()
        self.closed = True

    def _sender(self, entity: str, targets: list[str]) -> FakeSender:
        sender = self.senders[entity] = FakeSender(self, entity, targets)
        return sender

    def _receiver(self, path: str, sub_queue: ServiceBusSubQueue | None) -> FakeReceiver:
        if sub_queue == ServiceBusSubQueue.DEAD_LETTER:
            path += DEAD_LETTER
        receiver = self.receivers[path] = FakeReceiver(self, path)
        return receiver


# --- Key Vault ------------------------------------------------------------------------

VAULT_URL = "https://fake-vault.vault.azure.net"


@dataclass
class FakeSecretClient:
    """Duck-types ``azure.keyvault.secrets.aio.SecretClient``'s get, set, delete and
    close, answering with the SDK's models and errors as the service would."""

    secrets: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, name)
    fail_next: Exception | None = None
    gate: asyncio.Event | None = None  # when set, get_secret waits for it after reading
    closed: bool = False

    async def get_secret(self, name: str, version: str | None = None, **_: Any) -> KeyVaultSecret:
        self._called("get_secret", name)
        if name not in self.secrets:
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found")
        value = self.secrets[name]
        if self.gate is not None:
            await self.gate.wait()
        return KeyVaultSecret(_properties(name), value)

    async def set_secret(self, name: str, value: str, **_: Any) -> KeyVaultSecret:
        self._called("set_secret", name)
        self.secrets[name] = value
        return KeyVaultSecret(_properties(name), value)

    async def delete_secret(self, name: str, **_: Any) -> DeletedSecret:
        self._called("delete_secret", name)
        if self.secrets.pop(name, None) is None:
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found")
        return DeletedSecret(_properties(name), recovery_id=f"{VAULT_URL}/deletedsecrets/{name}")

    async def close(self) -> None:
        self.closed = True

    def _called(self, method: str, name: str) -> None:
        self.calls.append((method, name))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error


def _properties(name: str) -> SecretProperties:
    return SecretProperties(vault_id=f"{VAULT_URL}/secrets/{name}/{uuid.uuid4().hex}")


class FakeCredential:
    """An async credential that only records being closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True
