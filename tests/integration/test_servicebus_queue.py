"""ServiceBusQueue at its SDK boundary: what it hands the Service Bus client, and how it
reads what the client hands back (tests/azure_fakes.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.servicebus import ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import ServiceBusConnectionError

from shared.adapters.azure.servicebus import (
    SENDERS_PER_ENTITY,
    ServiceBusQueue,
    build_service_bus_client,
)
from shared.ports import MessageLockLost, MessageTooLarge, OutgoingMessage, Throttled
from tests.azure_fakes import FakeCredential, FakeServiceBusClient

DLQ = "q/$DeadLetterQueue"
PEEK_LOCK = ServiceBusReceiveMode.PEEK_LOCK


@pytest.fixture
def client() -> FakeServiceBusClient:
    return FakeServiceBusClient(subscriptions={"events": ["log", "hooks"]})


@pytest.fixture
def queue(client: FakeServiceBusClient) -> ServiceBusQueue:
    return ServiceBusQueue(client, topics={"events"}, receive_wait_seconds=2.5)  # type: ignore[arg-type]


def message(message_id: str = "m1", **fields: Any) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, body=message_id.encode(), **fields)


# --- sending --------------------------------------------------------------------------


async def test_a_message_carries_its_id_subject_properties_and_schedule(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    oslo = timezone(timedelta(hours=2))
    at = datetime(2030, 1, 1, 12, 0, tzinfo=oslo)
    await queue.send(
        "q",
        [
            message(
                "m1:2",
                subject="message.sent",
                application_properties={"tenant": "tn_a", "n": 2},
                scheduled_at=at,
            ),
            message("m2"),
        ],
    )
    [[scheduled, plain]] = client.senders["q"].batches
    assert (scheduled.message_id, scheduled.subject) == ("m1:2", "message.sent")
    assert b"".join(scheduled.body) == b"m1:2"
    assert scheduled.application_properties == {"tenant": "tn_a", "n": 2}
    assert scheduled.scheduled_enqueue_time_utc == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert plain.scheduled_enqueue_time_utc is None and plain.subject is None
    assert not plain.application_properties


async def test_a_schedule_without_a_time_zone_is_refused_and_nothing_is_sent(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await queue.send("q", [message("ok"), message(scheduled_at=datetime(2030, 1, 1))])
    assert client.senders["q"].batches == []


async def test_messages_are_split_into_as_many_batches_as_the_size_limit_needs() -> None:
    client = FakeServiceBusClient(max_batch_bytes=2500)
    queue = ServiceBusQueue(client)  # type: ignore[arg-type]
    await queue.send("q", [OutgoingMessage(f"m{i}", bytes(1000)) for i in range(5)])
    batches = client.senders["q"].batches
    assert [[m.message_id for m in batch] for batch in batches] == [
        ["m0", "m1"],
        ["m2", "m3"],
        ["m4"],
    ]
    assert queue.operations == Counter({"send:q": 5})  # billed per message, batched or not


async def test_a_message_too_large_for_any_batch_is_refused_alone_and_the_rest_sent() -> None:
    client = FakeServiceBusClient(max_batch_bytes=2500)
    queue = ServiceBusQueue(client)  # type: ignore[arg-type]
    sent = [message("small"), OutgoingMessage("huge", bytes(3000)), message("after")]
    with pytest.raises(MessageTooLarge, match=r"1 message\(s\) too large for 'q' .*2500") as err:
        await queue.send("q", sent)
    assert err.value.message_ids == ("huge",)
    assert [[m.message_id for m in b] for b in client.senders["q"].batches] == [["small", "after"]]
    assert queue.operations == Counter({"send:q": 2})


async def test_a_throttled_namespace_is_back_pressure_with_its_advised_wait() -> None:
    client = FakeServiceBusClient()
    queue = ServiceBusQueue(client)  # type: ignore[arg-type]
    client.busy = 1
    with pytest.raises(Throttled) as throttled:
        await queue.send("q", [message("m1")])
    assert throttled.value.retry_after == 10.0  # Learn: wait about 10 s after ServerBusy
    assert queue.operations == Counter()
    await queue.send("q", [message("m1")])
    assert queue.operations == Counter({"send:q": 1})


async def test_a_call_whose_every_message_is_too_large_sends_nothing() -> None:
    client = FakeServiceBusClient(max_batch_bytes=2500)
    queue = ServiceBusQueue(client)  # type: ignore[arg-type]
    with pytest.raises(MessageTooLarge):
        await queue.send("q", [OutgoingMessage("huge", bytes(3000))])
    assert client.senders["q"].batches == []
    assert queue.operations == Counter()


async def test_a_topic_gets_a_topic_sender_and_a_queue_a_queue_sender_once_each(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    for _ in range(2):
        await queue.send("events", [message("e1")])
        await queue.send("outbound", [message("o1")])
    assert client.opened == [("topic_sender", "events"), ("queue_sender", "outbound")]
    assert len(client.entities["events/subscriptions/hooks"]) == 2


async def test_sending_to_a_subscription_or_a_dead_letter_queue_is_refused(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    for entity in ("events/subscriptions/log", DLQ, "a/b", ""):
        with pytest.raises(ValueError):
            await queue.send(entity, [message()])
    assert client.opened == []


# --- receiving and settling -------------------------------------------------------------


async def test_a_received_message_carries_everything_the_broker_delivered(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    client.put(
        "q",
        message_id="m1",
        sections=[b'{"a":', b"1}"],  # a body in two data sections
        subject="message.sent",
        properties={"tenant": "tn_a", "n": 2},
    )
    [got] = await queue.receive("q", max_messages=5, lock_seconds=30)
    assert (got.message_id, got.body, got.subject) == ("m1", b'{"a":1}', "message.sent")
    assert dict(got.application_properties) == {"tenant": "tn_a", "n": 2}
    assert got.delivery_count == 1 and got.dead_letter_reason is None
    assert got.enqueued_at == client.now and got.enqueued_at.tzinfo is not None
    assert uuid.UUID(got.lock_token)
    assert client.opened == [("queue_receiver", "q", None, PEEK_LOCK)]
    assert client.receivers["q"].calls == [{"max_message_count": 5, "max_wait_time": 2.5}]


async def test_a_message_whose_body_is_not_data_is_refused(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    client.put("q", message_id="m1", sections=[], value="an AMQP value, not bytes")
    with pytest.raises(ValueError, match=r"m1 .* not data"):
        await queue.receive("q")


async def test_complete_settles_through_the_receiver_that_received(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("q", [message("m1"), message("m2")])
    first, second = await queue.receive("q", max_messages=2)
    await queue.complete("q", second)
    assert client.receivers["q"].settled == [("complete", "m2")]
    assert [m.message_id for m in client.entities["q"]] == ["m1"]
    await queue.complete("q", first)
    assert client.entities["q"] == []


async def test_an_abandoned_message_comes_back_with_a_higher_delivery_count(
    queue: ServiceBusQueue,
) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    await queue.abandon("q", got)
    [again] = await queue.receive("q")
    assert (again.message_id, again.delivery_count) == ("m1", 2)
    assert again.lock_token != got.lock_token


async def test_a_dead_letter_is_read_from_the_dead_letter_sub_queue_with_its_reason(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("q", [message(subject="s", application_properties={"k": "v"})])
    [got] = await queue.receive("q")
    await queue.dead_letter("q", got, "PermanentError")
    assert await queue.receive("q") == []
    [dead] = await queue.receive(DLQ)
    assert client.opened[-1] == ("queue_receiver", "q", ServiceBusSubQueue.DEAD_LETTER, PEEK_LOCK)
    assert (dead.message_id, dead.body, dead.subject) == ("m1", b"m1", "s")
    assert dead.dead_letter_reason == "PermanentError"
    assert dict(dead.application_properties) == {"k": "v"}  # broker properties left out
    await queue.complete(DLQ, dead)
    assert client.entities[DLQ] == []


async def test_a_subscription_and_its_dead_letters_get_subscription_receivers(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("events", [message("e1")])
    [got] = await queue.receive("events/subscriptions/log")
    await queue.dead_letter("events/subscriptions/log", got, "Poison")
    [dead] = await queue.receive("events/subscriptions/log/$DeadLetterQueue")
    assert dead.message_id == "e1" and dead.dead_letter_reason == "Poison"
    assert client.opened[1:] == [
        ("subscription_receiver", "events", "log", None, PEEK_LOCK),
        ("subscription_receiver", "events", "log", ServiceBusSubQueue.DEAD_LETTER, PEEK_LOCK),
    ]


async def test_a_topic_itself_cannot_be_received_from(queue: ServiceBusQueue) -> None:
    with pytest.raises(ValueError, match="subscriptions"):
        await queue.receive("events")
    with pytest.raises(ValueError):
        await queue.receive("q", max_messages=0)


async def test_settling_after_the_broker_dropped_the_lock_raises_lock_lost(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("q", [message()])
    [stale] = await queue.receive("q")
    client.expire_locks("q")
    with pytest.raises(MessageLockLost):
        await queue.complete("q", stale)
    with pytest.raises(MessageLockLost):  # known lost now: the service is not asked again
        await queue.abandon("q", stale)
    assert queue.operations == Counter({"send:q": 1, "receive:q": 1, "complete:q": 1})
    [fresh] = await queue.receive("q")
    assert fresh.delivery_count == 2
    await queue.complete("q", fresh)


async def test_settling_twice_or_on_another_entity_raises_lock_lost(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    with pytest.raises(MessageLockLost):
        await queue.complete("other", got)
    await queue.complete("q", got)
    for settle in (queue.complete, queue.abandon):
        with pytest.raises(MessageLockLost):
            await settle("q", got)
    with pytest.raises(MessageLockLost):
        await queue.dead_letter("q", got, "late")
    assert client.receivers["q"].settled == [("complete", "m1")]
    assert queue.operations == Counter({"send:q": 1, "receive:q": 1, "complete:q": 1})


async def test_a_settlement_that_failed_for_another_reason_can_be_retried(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    client.receivers["q"].fail_next = ServiceBusConnectionError()
    with pytest.raises(ServiceBusConnectionError):
        await queue.complete("q", got)
    await queue.complete("q", got)
    assert client.entities["q"] == []


async def test_of_two_concurrent_settlements_the_second_finds_the_lock_lost(
    queue: ServiceBusQueue,
) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    outcomes = await asyncio.gather(
        queue.complete("q", got), queue.abandon("q", got), return_exceptions=True
    )
    assert outcomes[0] is None and isinstance(outcomes[1], MessageLockLost)


async def test_a_message_whose_lock_ended_long_ago_is_no_longer_held(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    client.now = datetime(2020, 1, 1, tzinfo=UTC)  # the broker's lock ended years ago
    await queue.send("q", [message("m1"), message("m2")])
    [old] = await queue.receive("q")
    await queue.receive("q")
    with pytest.raises(MessageLockLost):
        await queue.complete("q", old)
    assert client.receivers["q"].settled == []


# --- redrive, metering, logs, closing -----------------------------------------------------


async def test_redrive_moves_dead_letters_back_under_new_ids(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    long_id = "x" * 128
    await queue.send("q", [message("m1", subject="s", application_properties={"k": 1})])
    await queue.send("q", [message(long_id)])
    for got in await queue.receive("q", max_messages=2):
        await queue.dead_letter("q", got, "Poison")

    assert await queue.redrive("q") == 2
    assert client.entities[DLQ] == []
    first, second = await queue.receive("q", max_messages=2)
    assert first.message_id.startswith("m1:redrive-") and second.message_id.startswith("x")
    assert len(second.message_id) == 128 and ":redrive-" in second.message_id
    assert (first.body, first.subject, dict(first.application_properties)) == (b"m1", "s", {"k": 1})
    assert first.dead_letter_reason is None and first.delivery_count == 1
    assert await queue.redrive("q") == 0


async def test_redrive_stops_at_max_messages(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    for i in range(3):
        client.put(DLQ, message_id=f"d{i}", sections=[b"{}"])
    assert await queue.redrive("q", max_messages=2) == 2
    assert [m.message_id for m in client.entities[DLQ]] == ["d2"]


async def test_a_subscription_cannot_be_redriven(queue: ServiceBusQueue) -> None:
    for entity in ("events/subscriptions/log", DLQ):
        with pytest.raises(ValueError, match="only a queue"):
            await queue.redrive(entity)


async def test_billed_operations_are_metered_by_kind_and_entity() -> None:
    client = FakeServiceBusClient(max_batch_bytes=2500)
    queue = ServiceBusQueue(client)  # type: ignore[arg-type]
    await queue.send("q", [OutgoingMessage(f"m{i}", bytes(1000)) for i in range(3)])
    a, b = await queue.receive("q", max_messages=2)
    [c] = await queue.receive("q")
    await queue.complete("q", a)
    await queue.abandon("q", b)
    await queue.dead_letter("q", c, "Poison")
    assert len(await queue.receive("q", max_messages=5)) == 1  # b, delivered again
    assert await queue.receive("other") == []  # an empty receive is billed too
    assert queue.operations == Counter(
        {
            "send:q": 3,
            "receive:q": 4,
            "complete:q": 1,
            "abandon:q": 1,
            "dead_letter:q": 1,
            "receive:other": 1,
        }
    )


async def test_a_message_is_billed_once_per_started_64_kb(
    queue: ServiceBusQueue,
) -> None:
    big, small, empty = bytes(100_000), b"{}", b""
    await queue.send("q", [OutgoingMessage(f"m{len(b)}", b) for b in (big, small, empty)])
    assert len(await queue.receive("q", max_messages=3)) == 3
    assert queue.operations == Counter({"send:q": 4, "receive:q": 4})


async def test_logs_name_entities_and_counts_but_never_bodies(
    queue: ServiceBusQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"body-that-must-stay-out-of-logs"
    await queue.send("q", [OutgoingMessage("m1", body)])
    [got] = await queue.receive("q")
    await queue.dead_letter("q", got, "Poison")
    await queue.redrive("q")
    assert "sent 1 message(s) to q" in caplog.text
    assert "received 1 message(s) from q" in caplog.text
    assert body.decode() not in caplog.text


async def test_close_closes_the_client_its_links_and_the_credential_it_owns(
    client: FakeServiceBusClient,
) -> None:
    credential = FakeCredential()
    queue = ServiceBusQueue(client, credential=credential)  # type: ignore[arg-type]
    await queue.send("q", [message()])
    await queue.receive("q")
    await queue.close()
    assert client.closed and credential.closed
    assert client.senders["q"].closed and client.receivers["q"].closed


# --- building the client -------------------------------------------------------------------


async def test_a_namespace_makes_an_identity_based_client() -> None:
    credential = FakeCredential()
    built = build_service_bus_client("ocm.servicebus.windows.net", None, credential)  # type: ignore[arg-type]
    assert isinstance(built, ServiceBusClient)
    assert built.fully_qualified_namespace == "ocm.servicebus.windows.net"
    await built.close()


@pytest.mark.parametrize("namespace", [None, "ocm.servicebus.windows.net"])
async def test_a_connection_string_wins_as_it_does_for_the_functions_host(
    namespace: str | None,
) -> None:
    key = "a2V5"  # never used: nothing connects until a link is opened
    built = build_service_bus_client(
        namespace,
        f"Endpoint=sb://dev.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={key}",
        FakeCredential(),  # type: ignore[arg-type]
    )
    assert built.fully_qualified_namespace == "dev.servicebus.windows.net"
    await built.close()


def test_a_client_needs_a_namespace_with_a_credential_or_a_connection_string() -> None:
    with pytest.raises(ValueError, match="credential"):
        build_service_bus_client("ocm.servicebus.windows.net", None, None)
    with pytest.raises(ValueError, match="namespace or a connection string"):
        build_service_bus_client(None, None, None)


async def test_concurrent_sends_to_one_entity_use_a_few_senders_each_alone(
    queue: ServiceBusQueue, client: FakeServiceBusClient
) -> None:
    await asyncio.gather(*(queue.send("outbound", [message(f"m{i}")]) for i in range(12)))
    opened = [o for o in client.opened if o == ("queue_sender", "outbound")]
    assert 2 <= len(opened) <= SENDERS_PER_ENTITY
    assert sorted(s.message_id for s in client.entities["outbound"]) == sorted(
        f"m{i}" for i in range(12)
    )
    # Sequential sends reuse an idle sender: no new link per call.
    await queue.send("outbound", [message("later")])
    assert [o for o in client.opened if o == ("queue_sender", "outbound")] == opened
