"""The Queue contract's essentials against a real Service Bus namespace.

No Service Bus emulator installs on our machines, so ServiceBusQueue is tested at
its SDK boundary (tests/integration/test_servicebus_queue.py) and, when
``OCM_TEST_SERVICEBUS_CONNECTION`` holds a connection string with Send and Listen
rights, here against the service itself; otherwise this module is skipped.

The namespace (Standard tier, as the product runs on) must have, used by nothing
else while the suite runs:

- queue ``ocm-test``: duplicate detection on (a window of at least 10 minutes),
  lock duration 30 s, maximum delivery count 10, no sessions;
- topic ``ocm-test-events``, duplicate detection on, with subscription ``all``
  (the default rule: every message).

Each test first empties what it uses, and draws fresh message ids: duplicate
detection remembers ids across runs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.azure.servicebus import ServiceBusQueue, build_service_bus_client
from shared.ports import MessageLockLost, OutgoingMessage, ReceivedMessage

CONNECTION = os.environ.get("OCM_TEST_SERVICEBUS_CONNECTION", "")
QUEUE = "ocm-test"
TOPIC = "ocm-test-events"
SUBSCRIPTION = f"{TOPIC}/subscriptions/all"
DEAD_LETTER = "/$DeadLetterQueue"

pytestmark = pytest.mark.skipif(
    not CONNECTION,
    reason="OCM_TEST_SERVICEBUS_CONNECTION is not set: the live Service Bus suite needs "
    "a namespace with the entities its module docstring names",
)


@pytest.fixture
async def live() -> AsyncIterator[ServiceBusQueue]:
    client = build_service_bus_client(None, CONNECTION, None)
    queue = ServiceBusQueue(client, topics={TOPIC}, receive_wait_seconds=1.0)
    for entity in (QUEUE, QUEUE + DEAD_LETTER, SUBSCRIPTION, SUBSCRIPTION + DEAD_LETTER):
        while drained := await queue.receive(entity, max_messages=100):
            for message in drained:
                await queue.complete(entity, message)
    yield queue
    await queue.close()


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def receive_all(
    queue: ServiceBusQueue, entity: str, count: int, within: float = 30.0
) -> list[ReceivedMessage]:
    """Receive until ``count`` messages came (a receive may return fewer), then check
    that no more follow."""
    got: list[ReceivedMessage] = []
    deadline = time.monotonic() + within
    while len(got) < count and time.monotonic() < deadline:
        got += await queue.receive(entity, max_messages=count - len(got))
    got += await queue.receive(entity, max_messages=10)
    return got


async def test_a_sent_message_is_received_with_everything_it_carried(
    live: ServiceBusQueue,
) -> None:
    message_id = fresh("m")
    sent = OutgoingMessage(
        message_id, b'{"a": 1}', subject="message.sent", application_properties={"t": "x", "n": 2}
    )
    before = datetime.now(UTC)
    await live.send(QUEUE, [sent])
    [got] = await receive_all(live, QUEUE, 1)
    assert (got.message_id, got.body, got.subject) == (message_id, b'{"a": 1}', "message.sent")
    assert dict(got.application_properties) == {"t": "x", "n": 2}
    assert got.delivery_count == 1 and got.dead_letter_reason is None
    assert abs(got.enqueued_at - before) < timedelta(minutes=5)
    await live.complete(QUEUE, got)
    with pytest.raises(MessageLockLost):
        await live.complete(QUEUE, got)
    assert await live.receive(QUEUE) == []


async def test_an_abandoned_message_comes_back_with_a_higher_delivery_count(
    live: ServiceBusQueue,
) -> None:
    await live.send(QUEUE, [OutgoingMessage(fresh("m"), b"{}")])
    [got] = await receive_all(live, QUEUE, 1)
    await live.abandon(QUEUE, got)
    [again] = await receive_all(live, QUEUE, 1)
    assert again.message_id == got.message_id and again.delivery_count == 2
    await live.complete(QUEUE, again)


async def test_a_scheduled_message_is_invisible_until_due(live: ServiceBusQueue) -> None:
    due = datetime.now(UTC) + timedelta(seconds=10)
    message_id = fresh("later")
    await live.send(QUEUE, [OutgoingMessage(message_id, b"{}", scheduled_at=due)])
    assert await live.receive(QUEUE) == []
    [got] = await receive_all(live, QUEUE, 1, within=60)
    assert got.message_id == message_id
    assert datetime.now(UTC) >= due - timedelta(seconds=2)  # clock skew allowed
    await live.complete(QUEUE, got)


async def test_a_duplicate_id_within_the_window_is_dropped(live: ServiceBusQueue) -> None:
    first, second = fresh("m"), fresh("m")
    await live.send(QUEUE, [OutgoingMessage(first, b"1")])
    await live.send(QUEUE, [OutgoingMessage(first, b"again"), OutgoingMessage(second, b"2")])
    got = await receive_all(live, QUEUE, 2)
    assert [(m.message_id, m.body) for m in got] == [(first, b"1"), (second, b"2")]
    for message in got:
        await live.complete(QUEUE, message)


async def test_more_than_one_batch_holds_all_arrive(live: ServiceBusQueue) -> None:
    ids = [fresh(f"b{i:03d}") for i in range(300)]
    await live.send(QUEUE, [OutgoingMessage(i, bytes(2000)) for i in ids])  # 600 kB
    got = await receive_all(live, QUEUE, 300, within=120)
    assert sorted(m.message_id for m in got) == sorted(ids)
    for message in got:
        await live.complete(QUEUE, message)


async def test_a_topic_fans_out_to_its_subscription(live: ServiceBusQueue) -> None:
    message_id = fresh("e")
    await live.send(TOPIC, [OutgoingMessage(message_id, b"{}", application_properties={"k": 1})])
    [got] = await receive_all(live, SUBSCRIPTION, 1)
    assert got.message_id == message_id and dict(got.application_properties) == {"k": 1}
    await live.complete(SUBSCRIPTION, got)


async def test_a_dead_letter_keeps_its_reason_and_can_be_redriven(live: ServiceBusQueue) -> None:
    message_id = fresh("m")
    await live.send(QUEUE, [OutgoingMessage(message_id, b"{}", subject="s")])
    [got] = await receive_all(live, QUEUE, 1)
    await live.dead_letter(QUEUE, got, "PermanentError")
    [dead] = await receive_all(live, QUEUE + DEAD_LETTER, 1)
    assert dead.message_id == message_id and dead.dead_letter_reason == "PermanentError"
    assert dict(dead.application_properties) == {}
    await live.abandon(QUEUE + DEAD_LETTER, dead)

    assert await live.redrive(QUEUE) == 1
    [back] = await receive_all(live, QUEUE, 1)
    assert back.message_id.startswith(f"{message_id}:redrive-")
    assert (back.body, back.subject, back.dead_letter_reason) == (b"{}", "s", None)
    await live.complete(QUEUE, back)
    assert await live.receive(QUEUE + DEAD_LETTER) == []
