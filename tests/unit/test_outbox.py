"""The outbox sweep: jobs and events a crash left on the document reach the queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.containers import MESSAGES
from shared.domain.channels import ChannelCreate
from shared.domain.jobs import DispatchJob
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import OutgoingMessage, ReceivedMessage, Subscription
from shared.ports.queues import MAX_MESSAGE_BYTES
from shared.services.channels import channels
from shared.services.delivery import dispatch, provider_events
from shared.services.messaging import compose, intake, messages, outbox
from shared.services.onboarding import signup
from tests.fakes import FakeQueue
from tests.unit.conftest import SETTINGS, World, sandbox_message, stored

OUTBOUND = SETTINGS.OCM_OUTBOUND_QUEUE
EVENTS = f"{SETTINGS.OCM_EVENTS_TOPIC}/subscriptions/{SETTINGS.OCM_EVENTS_LOG_SUBSCRIPTION}"
GRACE = SETTINGS.OCM_OUTBOX_GRACE_SECONDS


raw = sandbox_message


async def persisted_but_never_handed_off(
    world: World, tenant_id: str | None = None, *, context: Any = None, **fields: Any
) -> Document:
    """What a crash between the write and the enqueue leaves behind; ``context``
    is stored as given, past the API's checks (a document written before them)."""
    tenant_id = tenant_id or world.tenant_id
    body = raw(**fields)
    msg = intake.parse_message(body)
    channel = await channels.get_channel(world.deps, tenant_id, "sandbox")
    doc = compose.build_message(world.deps, tenant_id, body, msg, channel, world.clock.now())
    if context is not None:
        doc["context"] = context
    return await world.deps.store.create(MESSAGES, doc)


async def drain(world: World, entity: str) -> list[ReceivedMessage]:
    got = await world.queue.receive(entity, max_messages=100)
    for m in got:
        await world.queue.complete(entity, m)
    return got


async def test_nothing_is_re_published_within_the_grace_period(world: World) -> None:
    doc = await persisted_but_never_handed_off(world)
    world.clock.advance(GRACE - 1)
    assert await outbox.sweep(world.deps) == {"jobs": 0, "event_documents": 0, "refused": 0}
    assert await world.queue.receive(OUTBOUND) == []
    assert await world.queue.receive(EVENTS) == []
    assert (await stored(world, doc["id"]))["pending_events"] == [doc["events"][0]["id"]]


async def test_a_job_never_enqueued_is_enqueued_once_older_than_the_grace(world: World) -> None:
    doc = await persisted_but_never_handed_off(world)
    world.clock.advance(GRACE + 1)
    counts = await outbox.sweep(world.deps)
    assert counts["jobs"] == 1
    jobs = await drain(world, OUTBOUND)
    assert [j.message_id for j in jobs] == [f"{doc['id']}:1"]
    assert orjson.loads(jobs[0].body) == {
        "tenant_id": world.tenant_id,
        "message_id": doc["id"],
        "job": f"{doc['id']}:1",
    }


async def test_pending_events_older_than_the_grace_are_published_and_cleared(
    world: World,
) -> None:
    doc = await persisted_but_never_handed_off(world, context={"order": "A-17"})
    world.clock.advance(GRACE + 1)
    assert (await outbox.sweep(world.deps))["event_documents"] == 1
    events = await drain(world, EVENTS)
    assert [e.message_id for e in events] == [doc["events"][0]["id"]]
    body = orjson.loads(events[0].body)
    assert body["type"] == "message.queued"
    assert body["data"]["context"] == {"order": "A-17"}
    after = await stored(world, doc["id"])
    assert after["pending_events"] == []
    assert after["events_at"] is None


async def test_two_sweeps_in_a_row_publish_each_job_and_event_once(world: World) -> None:
    doc = await persisted_but_never_handed_off(world)
    world.clock.advance(GRACE + 1)
    await outbox.sweep(world.deps)
    assert await outbox.sweep(world.deps) == {"jobs": 0, "event_documents": 0, "refused": 0}
    assert len(await drain(world, OUTBOUND)) == 1
    assert len(await drain(world, EVENTS)) == 1
    assert (await stored(world, doc["id"]))["status"] == "queued"


async def test_later_sweeps_do_not_re_publish_once_the_duplicate_window_is_over(
    world: World,
) -> None:
    await persisted_but_never_handed_off(world)
    world.clock.advance(GRACE + 1)
    await outbox.sweep(world.deps)
    for _ in range(40):  # the sweep runs every 30 s; 20 minutes of a queue backlog
        world.clock.advance(30)
        await outbox.sweep(world.deps)
    assert len(await drain(world, OUTBOUND)) == 1
    assert len(await drain(world, EVENTS)) == 1


async def test_a_scheduled_message_is_not_swept_before_its_send_time(world: World) -> None:
    send_at = world.clock.now() + timedelta(hours=1)
    doc = await persisted_but_never_handed_off(world, send_at=send_at.isoformat())
    world.clock.advance(GRACE + 1)
    assert (await outbox.sweep(world.deps))["jobs"] == 0
    assert (await stored(world, doc["id"]))["status"] == "scheduled"
    assert await world.queue.receive(OUTBOUND) == []
    world.clock.set(send_at + timedelta(seconds=GRACE + 1))
    await outbox.sweep(world.deps)
    assert [j.message_id for j in await drain(world, OUTBOUND)] == [f"{doc['id']}:1"]


async def test_a_cancelled_message_is_not_enqueued_by_the_sweep(world: World) -> None:
    doc = await persisted_but_never_handed_off(world)
    await messages.cancel_message(world.deps, world.tenant_id, doc["id"])
    await drain(world, EVENTS)
    world.clock.advance(GRACE + 1)
    assert await outbox.sweep(world.deps) == {"jobs": 0, "event_documents": 0, "refused": 0}
    assert await world.queue.receive(OUTBOUND) == []


async def test_a_message_handed_off_at_intake_is_not_published_twice(world: World) -> None:
    await intake.accept_message(world.deps, world.tenant_id, raw())
    world.clock.advance(GRACE + 1)
    await outbox.sweep(world.deps)  # re-publishes; the queue drops the duplicates
    assert len(await drain(world, OUTBOUND)) == 1
    assert len(await drain(world, EVENTS)) == 1


async def test_a_message_too_large_to_publish_is_set_aside_and_the_sweep_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A document written before the API bounded what travels (azure review R1): its
    event is refused by the queue, alone; the other tenant's overdue message, behind
    it in the oldest-first page, is handed off in the same sweep."""
    poisoned = await persisted_but_never_handed_off(
        world, context={"blob": "x" * MAX_MESSAGE_BYTES}
    )
    world.clock.advance(1)
    other_id = (await signup.create_tenant(world.deps, "globex")).tenant["id"]
    sandbox = ChannelCreate(name="sandbox", type="sandbox")
    await channels.create_channel(world.deps, other_id, sandbox)
    fine = await persisted_but_never_handed_off(world, other_id)
    world.clock.advance(GRACE + 1)
    counts = await outbox.sweep(world.deps)
    assert counts == {"jobs": 1, "event_documents": 1, "refused": 1}
    assert [j.message_id for j in await drain(world, OUTBOUND)] == [f"{fine['id']}:1"]
    assert [e.message_id for e in await drain(world, EVENTS)] == [fine["events"][0]["id"]]
    assert f"message {poisoned['id']} of tenant {world.tenant_id} cannot be published" in (
        caplog.text
    )
    # Set aside behind every other overdue document until the grace has passed again.
    assert (await stored(world, poisoned["id"]))["outbox_at"] == to_utc_text(world.clock.now())
    assert await outbox.sweep(world.deps) == {"jobs": 0, "event_documents": 0, "refused": 0}


class FlakyQueue(FakeQueue):
    """A queue whose sends fail while ``down`` is set (the broker is unreachable)."""

    down = True

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        if self.down:
            raise ConnectionError("queue unreachable")
        await super().send(entity, messages)


async def test_a_message_written_when_the_queue_is_down_is_accepted_and_swept_later(
    world: World,
) -> None:
    topics = {SETTINGS.OCM_EVENTS_TOPIC: [SETTINGS.OCM_EVENTS_LOG_SUBSCRIPTION]}
    flaky = FlakyQueue(world.clock, topics=topics)
    world.deps.queue = flaky
    accepted = await intake.accept_message(world.deps, world.tenant_id, raw())
    assert accepted["status"] == "queued"  # the client is not told to retry: it would duplicate
    flaky.down = False
    world.clock.advance(timedelta(seconds=GRACE + 1))
    await outbox.sweep(world.deps)
    [job] = await flaky.receive(OUTBOUND)
    assert job.message_id == f"{accepted['id']}:1"


async def test_one_sweep_drains_a_backlog_larger_than_a_page(world: World) -> None:
    backlog = outbox.SWEEP_PAGE * 2 + 7
    for _ in range(backlog):
        await persisted_but_never_handed_off(world)
    world.clock.advance(GRACE + 1)
    counts = await outbox.sweep(world.deps)
    assert counts == {"jobs": backlog, "event_documents": backlog, "refused": 0}
    assert (await world.queue.counts(OUTBOUND))["active"] == backlog


async def test_events_no_subscription_takes_are_not_even_built(world: World) -> None:
    """With only a failures subscription on the topic, message.queued and
    message.sent go nowhere, so they are not sent; message.failed is."""
    topic = SETTINGS.OCM_EVENTS_TOPIC
    sent: list[str | None] = []

    class Recording(FakeQueue):
        async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
            sent.extend(m.subject for m in messages if entity == topic)
            await super().send(entity, messages)

    only_failures = Subscription("failures", only=("type", ("message.failed",)))
    world.deps.queue = queue = Recording(world.clock, topics={topic: [only_failures]})
    ok = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    bad = await intake.accept_message(
        world.deps, world.tenant_id, sandbox_message(options={"sandbox": {"send": "fail"}})
    )
    for _ in range(2):
        received = (await queue.receive(SETTINGS.OCM_OUTBOUND_QUEUE))[0]
        await dispatch.dispatch(world.deps, DispatchJob.decode(received.body))
        await queue.complete(SETTINGS.OCM_OUTBOUND_QUEUE, received)
    assert sent == ["message.failed"]
    got = await queue.receive(f"{topic}/subscriptions/failures", max_messages=5)
    assert [orjson.loads(m.body)["data"]["message_id"] for m in got] == [bad["id"]]
    assert ok["id"] != bad["id"]


async def test_a_status_change_nobody_subscribes_to_is_written_once_with_nothing_to_clear(
    world: World,
) -> None:
    """The sent and delivered writes drop the events nobody takes before writing,
    so no patch clears an outbox after them (docs/cost.md: one write per step)."""
    topic = SETTINGS.OCM_EVENTS_TOPIC
    patched: list[int] = []
    store = world.deps.store

    class Counting(type(store)):  # type: ignore[misc]
        async def patch_many(self, container: str, items: Any) -> int:
            patched.append(len(items))
            return await super().patch_many(container, items)

    store.__class__ = Counting
    only_failures = Subscription("failures", only=("type", ("message.failed",)))
    world.deps.queue = queue = FakeQueue(world.clock, topics={topic: [only_failures]})
    accepted = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    job = (await queue.receive(OUTBOUND))[0]
    await dispatch.dispatch(world.deps, DispatchJob.decode(job.body))
    [receipt] = await queue.receive(SETTINGS.OCM_PROVIDER_EVENTS_QUEUE)
    await provider_events.handle(world.deps, receipt.body)
    doc = await stored(world, accepted["id"])
    assert doc["status"] == "delivered"
    assert [e["type"] for e in doc["events"]][-2:] == ["message.sent", "message.delivered"]
    assert doc["pending_events"] == [] and doc["events_at"] is None
    assert patched == []


async def test_a_new_message_carries_no_events_outbox_when_nobody_takes_its_event(
    world: World,
) -> None:
    topic = SETTINGS.OCM_EVENTS_TOPIC
    only_failures = Subscription("failures", only=("type", ("message.failed",)))
    world.deps.queue = FakeQueue(world.clock, topics={topic: [only_failures]})
    quiet = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    doc = await stored(world, quiet["id"])
    assert doc["pending_events"] == [] and doc["events_at"] is None
    assert [e["type"] for e in doc["events"]] == ["message.queued"]  # the timeline keeps it

    world.deps.queue = FakeQueue(world.clock, topics={topic: ["everything"]})
    heard = await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    doc = await stored(world, heard["id"])
    assert len(doc["pending_events"]) == 1 and doc["events_at"] is not None
