"""Queue contract (Service Bus semantics): every adapter of the port passes these."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.embedded.sqlite_queue import SqliteQueue
from shared.ports import MessageLockLost, MessageTooLarge, OutgoingMessage
from shared.ports.queues import MAX_MESSAGE_BYTES
from tests.contract.conftest import MAX_DELIVERIES
from tests.fakes import FakeClock, FakeQueue

Queue = FakeQueue | SqliteQueue
DLQ = "q/$DeadLetterQueue"


def message(message_id: str = "m1", **fields: Any) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, body=message_id.encode(), **fields)


async def test_a_sent_message_is_received_with_everything_it_carried(
    queue: Queue, clock: FakeClock
) -> None:
    sent = OutgoingMessage(
        "m1", b"{}", subject="message.sent", application_properties={"tenant": "tn_a", "n": 2}
    )
    await queue.send("q", [sent])
    [got] = await queue.receive("q")
    assert (got.message_id, got.body, got.subject) == ("m1", b"{}", "message.sent")
    assert dict(got.application_properties) == {"tenant": "tn_a", "n": 2}
    assert got.delivery_count == 1 and got.dead_letter_reason is None
    assert got.enqueued_at == clock.now() and got.lock_token


async def test_a_received_message_is_locked_until_settled(queue: Queue) -> None:
    await queue.send("q", [message()])
    assert len(await queue.receive("q")) == 1
    assert await queue.receive("q") == []
    assert await queue.counts("q") == {"active": 0, "scheduled": 0, "locked": 1, "dead_letter": 0}


async def test_a_completed_message_is_gone(queue: Queue, clock: FakeClock) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q", lock_seconds=30)
    await queue.complete("q", got)
    clock.advance(31)
    assert await queue.receive("q") == []


async def test_an_expired_lock_redelivers_with_a_higher_delivery_count(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message()])
    [first] = await queue.receive("q", lock_seconds=30)
    clock.advance(29)
    assert await queue.receive("q") == []
    clock.advance(1)
    [second] = await queue.receive("q")
    assert second.message_id == "m1" and second.delivery_count == 2
    assert second.lock_token != first.lock_token


async def test_abandon_makes_the_message_receivable_at_once(queue: Queue) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    await queue.abandon("q", got)
    [again] = await queue.receive("q")
    assert again.delivery_count == 2


async def test_after_max_deliveries_an_abandoned_message_is_dead_lettered(queue: Queue) -> None:
    await queue.send("q", [message()])
    for count in range(1, MAX_DELIVERIES + 1):
        [got] = await queue.receive("q")
        assert got.delivery_count == count
        await queue.abandon("q", got)
    assert await queue.receive("q") == []
    [dead] = await queue.receive(DLQ)
    assert dead.message_id == "m1" and dead.dead_letter_reason == "MaxDeliveryCountExceeded"


async def test_after_max_deliveries_an_expired_lock_dead_letters(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message("m1"), message("m2")])
    for _ in range(MAX_DELIVERIES):
        assert len(await queue.receive("q", max_messages=2, lock_seconds=10)) == 2
        clock.advance(10)
    await queue.send("q", [message("m3")])
    assert [m.message_id for m in await queue.receive("q", max_messages=5)] == ["m3"]
    assert (await queue.counts("q"))["dead_letter"] == 2
    dead = await queue.receive(DLQ, max_messages=5)
    assert [m.dead_letter_reason for m in dead] == ["MaxDeliveryCountExceeded"] * 2


async def test_dead_letter_moves_the_message_with_its_reason(queue: Queue) -> None:
    await queue.send("q", [message(subject="s", application_properties={"k": "v"})])
    [got] = await queue.receive("q")
    await queue.dead_letter("q", got, "PermanentError")
    assert await queue.receive("q") == []
    [dead] = await queue.receive(DLQ)
    assert (dead.message_id, dead.body, dead.subject) == ("m1", b"m1", "s")
    assert dead.dead_letter_reason == "PermanentError"
    assert dict(dead.application_properties) == {"k": "v"}
    await queue.complete(DLQ, dead)
    assert await queue.counts("q") == {"active": 0, "scheduled": 0, "locked": 0, "dead_letter": 0}


async def test_settling_after_the_lock_expired_raises_lock_lost(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message()])
    [stale] = await queue.receive("q", lock_seconds=10)
    clock.advance(10)
    for settle in (queue.complete, queue.abandon):
        with pytest.raises(MessageLockLost):
            await settle("q", stale)
    [fresh] = await queue.receive("q")
    with pytest.raises(MessageLockLost):
        await queue.dead_letter("q", stale, "late")
    await queue.complete("q", fresh)


async def test_settling_twice_raises_lock_lost(queue: Queue) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    await queue.complete("q", got)
    with pytest.raises(MessageLockLost):
        await queue.complete("q", got)
    with pytest.raises(MessageLockLost):
        await queue.abandon("q", got)
    with pytest.raises(MessageLockLost):
        await queue.dead_letter("q", got, "late")


async def test_settling_on_another_entity_raises_lock_lost(queue: Queue) -> None:
    await queue.send("q", [message()])
    [got] = await queue.receive("q")
    with pytest.raises(MessageLockLost):
        await queue.complete("other", got)


async def test_a_scheduled_message_is_invisible_until_due(queue: Queue, clock: FakeClock) -> None:
    await queue.send("q", [message("later", scheduled_at=clock.now() + timedelta(seconds=60))])
    await queue.send("q", [message("past", scheduled_at=clock.now() - timedelta(seconds=60))])
    assert [m.message_id for m in await queue.receive("q", max_messages=5)] == ["past"]
    assert (await queue.counts("q"))["scheduled"] == 1
    clock.advance(60)
    [due] = await queue.receive("q")
    assert due.message_id == "later" and due.delivery_count == 1


async def test_messages_come_in_order_of_visibility_then_sending(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message("b", scheduled_at=clock.now() + timedelta(seconds=5))])
    await queue.send("q", [message("c"), message("d")])
    clock.advance(10)
    await queue.send("q", [message("e")])
    got = await queue.receive("q", max_messages=10)
    assert [m.message_id for m in got] == ["c", "d", "b", "e"]


async def test_receive_takes_at_most_max_messages(queue: Queue) -> None:
    await queue.send("q", [message(f"m{i}") for i in range(5)])
    assert [m.message_id for m in await queue.receive("q", max_messages=3)] == ["m0", "m1", "m2"]
    assert [m.message_id for m in await queue.receive("q", max_messages=3)] == ["m3", "m4"]


async def test_a_batch_send_delivers_every_message(queue: Queue) -> None:
    """More than one statement takes in the embedded queue (a few hundred), in order."""
    await queue.send("q", [message(f"m{i:04d}") for i in range(1201)])
    got: list[str] = []
    while batch := await queue.receive("q", max_messages=500):
        got += [m.message_id for m in batch]
    assert got == [f"m{i:04d}" for i in range(1201)]


async def test_a_message_larger_than_service_bus_takes_is_refused_alone(queue: Queue) -> None:
    """Service Bus Standard takes 256 KB a message; the embedded queue refuses the
    same, so what would not travel in Azure is caught on a laptop too."""
    huge = OutgoingMessage("huge", bytes(MAX_MESSAGE_BYTES))
    with pytest.raises(MessageTooLarge) as refused:
        await queue.send("events", [message("e1"), huge, message("e2")])
    assert refused.value.message_ids == ("huge",) and refused.value.entity == "events"
    for sub in ("events/subscriptions/log", "events/subscriptions/hooks"):
        assert [m.message_id for m in await queue.receive(sub, max_messages=5)] == ["e1", "e2"]
    await queue.send("q", [OutgoingMessage("fits", bytes(MAX_MESSAGE_BYTES - 1024))])
    assert [m.message_id for m in await queue.receive("q")] == ["fits"]


async def test_a_duplicate_id_within_the_window_is_dropped(queue: Queue, clock: FakeClock) -> None:
    await queue.send("q", [message("m1")])
    clock.advance(timedelta(minutes=9))
    await queue.send("q", [message("m1"), message("m2"), message("m2")])
    assert [m.message_id for m in await queue.receive("q", max_messages=10)] == ["m1", "m2"]


async def test_a_duplicate_id_is_dropped_even_after_completion(queue: Queue) -> None:
    await queue.send("q", [message("m1")])
    [got] = await queue.receive("q")
    await queue.complete("q", got)
    await queue.send("q", [message("m1")])
    assert await queue.receive("q") == []


async def test_after_the_window_the_same_id_is_accepted(queue: Queue, clock: FakeClock) -> None:
    await queue.send("q", [message("m1")])
    clock.advance(timedelta(minutes=10))
    await queue.send("q", [message("m1")])
    assert len(await queue.receive("q", max_messages=10)) == 2


async def test_an_id_past_the_window_is_fresh_even_before_clean_up(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message("m1")])
    clock.advance(timedelta(minutes=10, seconds=-1))
    await queue.send("q", [message("other")])  # the embedded queue cleans up here
    clock.advance(timedelta(seconds=2))  # m1 is past its window, still on record
    await queue.send("q", [message("m1"), message("m1")])
    got = [m.message_id for m in await queue.receive("q", max_messages=10)]
    assert got == ["m1", "other", "m1"]


async def test_the_same_id_on_another_entity_is_not_a_duplicate(queue: Queue) -> None:
    await queue.send("q", [message("m1")])
    await queue.send("r", [message("m1")])
    assert len(await queue.receive("r")) == 1


async def test_a_topic_fans_out_to_each_subscription(queue: Queue) -> None:
    await queue.send("events", [message("e1"), message("e1"), message("e2")])
    for sub in ("events/subscriptions/log", "events/subscriptions/hooks"):
        got = await queue.receive(sub, max_messages=10)
        assert [m.message_id for m in got] == ["e1", "e2"]
        await queue.complete(sub, got[0])
    assert await queue.counts("events/subscriptions/log") == {
        "active": 0,
        "scheduled": 0,
        "locked": 1,
        "dead_letter": 0,
    }


async def test_a_filtered_subscription_keeps_only_what_its_rule_accepts(queue: Queue) -> None:
    def typed(message_id: str, kind: str) -> OutgoingMessage:
        return OutgoingMessage(message_id, b"{}", application_properties={"type": kind})

    await queue.send("events", [typed("e1", "sent"), typed("e2", "failed"), message("e3")])
    got = await queue.receive("events/subscriptions/failures", max_messages=10)
    assert [m.message_id for m in got] == ["e2"]
    everything = await queue.receive("events/subscriptions/log", max_messages=10)
    assert [m.message_id for m in everything] == ["e1", "e2", "e3"]


async def test_a_message_no_subscription_accepts_is_dropped_and_the_queue_says_so(
    queue: Queue,
) -> None:
    def typed(message_id: str, kind: str) -> OutgoingMessage:
        return OutgoingMessage(message_id, b"{}", application_properties={"type": kind})

    assert queue.reaches_anyone("alerts", {"type": "failed"})
    assert not queue.reaches_anyone("alerts", {"type": "sent"})
    assert queue.reaches_anyone("events", {"type": "sent"})
    assert queue.reaches_anyone("q", {})  # a queue always receives
    await queue.send("alerts", [typed("a1", "sent"), typed("a2", "failed")])
    got = await queue.receive("alerts/subscriptions/pager", max_messages=10)
    assert [m.message_id for m in got] == ["a2"]
    # As in Service Bus, the topic's duplicate detection saw a1 even though nobody
    # took it: the same id again is dropped, whatever its type now.
    await queue.send("alerts", [typed("a1", "failed")])
    assert await queue.receive("alerts/subscriptions/pager") == []


async def test_waiting_returns_at_once_when_a_message_is_ready(queue: Queue) -> None:
    await queue.send("q", [message()])
    started = time.monotonic()
    await queue.wait_for_messages("q", timeout=5)
    assert time.monotonic() - started < 1


async def test_waiting_returns_when_a_message_is_sent(queue: Queue) -> None:
    waiter = asyncio.create_task(queue.wait_for_messages("q", timeout=5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    started = time.monotonic()
    await queue.send("q", [message()])
    await asyncio.wait_for(waiter, 1)
    assert time.monotonic() - started < 1


async def test_waiting_wakes_when_a_scheduled_message_falls_due(
    queue: Queue, clock: FakeClock
) -> None:
    await queue.send("q", [message(scheduled_at=clock.now() + timedelta(seconds=0.05))])
    started = time.monotonic()
    await queue.wait_for_messages("q", timeout=5)
    assert time.monotonic() - started < 1


async def test_waiting_gives_up_after_the_timeout(queue: Queue) -> None:
    started = time.monotonic()
    await queue.wait_for_messages("q", timeout=0.05)
    assert 0.04 < time.monotonic() - started < 1
