"""Dispatch with fakes: every path a job can take, and that none sends twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from shared.containers import MESSAGES
from shared.domain.jobs import DispatchJob
from shared.ports import ReceivedMessage, SendRequest, SendResult
from shared.services.delivery import dispatch, provider_events
from shared.services.messaging import intake, messages
from tests.unit.conftest import SETTINGS, World, sandbox_message, stored

OUTBOUND = SETTINGS.OCM_OUTBOUND_QUEUE


def message(**options: Any) -> dict[str, Any]:
    return sandbox_message(options=options)


async def next_job(world: World) -> ReceivedMessage:
    got = await world.queue.receive(OUTBOUND, max_messages=1)
    assert got, "no dispatch job is due"
    return got[0]


async def run_job(world: World) -> str:
    received = await next_job(world)
    outcome = await dispatch.dispatch(world.deps, DispatchJob.decode(received.body))
    await world.queue.complete(OUTBOUND, received)
    return outcome


class CountingSender:
    def __init__(self) -> None:
        self.calls: list[SendRequest] = []

    async def send(self, request: SendRequest) -> SendResult:
        self.calls.append(request)
        return SendResult(provider_message_id=f"p{len(self.calls)}")

    async def close(self) -> None:
        return None


async def test_a_queued_message_is_sent_and_its_receipt_follows(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    assert await run_job(world) == "sent"
    doc = await stored(world, msg["id"])
    assert doc["status"] == "sent"
    receipts = await world.queue.receive(SETTINGS.OCM_PROVIDER_EVENTS_QUEUE, max_messages=5)
    assert len(receipts) == 1
    assert await provider_events.handle(world.deps, receipts[0].body) == "delivered"
    assert (await stored(world, msg["id"]))["status"] == "delivered"


async def test_a_transient_error_schedules_a_retry_with_a_new_job_id(world: World) -> None:
    msg = await intake.accept_message(
        world.deps, world.tenant_id, message(sandbox={"send": "transient", "fail_times": 1})
    )
    assert await run_job(world) == "retrying"
    doc = await stored(world, msg["id"])
    assert doc["status"] == "queued"
    assert doc["dispatch"]["job"] == f"{msg['id']}:2"
    assert await world.queue.receive(OUTBOUND) == []  # scheduled with backoff, not due yet
    world.clock.advance(timedelta(seconds=2))
    received = await next_job(world)
    assert received.message_id == f"{msg['id']}:2"
    assert await dispatch.dispatch(world.deps, DispatchJob.decode(received.body)) == "sent"


async def test_retries_stop_at_max_attempts_and_fail_with_the_providers_code(world: World) -> None:
    msg = await intake.accept_message(
        world.deps, world.tenant_id, message(max_attempts=2, sandbox={"send": "transient"})
    )
    assert await run_job(world) == "retrying"
    world.clock.advance(timedelta(seconds=60))
    assert await run_job(world) == "failed"
    doc = await stored(world, msg["id"])
    assert doc["error"]["code"] == "SANDBOX_TRANSIENT"
    assert doc["attempts"] == 2


async def test_a_throttle_reschedules_without_using_an_attempt(world: World) -> None:
    msg = await intake.accept_message(
        world.deps,
        world.tenant_id,
        message(
            max_attempts=1, sandbox={"send": "throttle", "fail_times": 1, "retry_after_ms": 5000}
        ),
    )
    assert await run_job(world) == "throttled"
    doc = await stored(world, msg["id"])
    assert doc["attempts"] == 0
    assert doc["throttles"] == 1
    world.clock.advance(timedelta(seconds=4))
    assert await world.queue.receive(OUTBOUND) == []  # Retry-After is honoured
    world.clock.advance(timedelta(seconds=1))
    assert await run_job(world) == "sent"
    assert (await stored(world, msg["id"]))["attempts"] == 1


async def test_a_duplicate_job_never_sends_twice(world: World) -> None:
    sender = CountingSender()
    world.deps.senders = {"sandbox": sender}
    await intake.accept_message(world.deps, world.tenant_id, message())
    received = await next_job(world)
    job = DispatchJob.decode(received.body)
    assert await dispatch.dispatch(world.deps, job) == "sent"
    assert await dispatch.dispatch(world.deps, job) == "dropped"
    assert len(sender.calls) == 1


async def test_a_redelivered_job_after_a_crash_mid_send_sends_once_more(world: World) -> None:
    sender = CountingSender()
    world.deps.senders = {"sandbox": sender}
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    received = await next_job(world)
    job = DispatchJob.decode(received.body)
    doc = await stored(world, msg["id"])
    # The first delivery claimed the message, then the process died before sending.
    doc["status"] = "sending"
    doc["claim"] = {"job": job.job, "at": doc["created_at"]}
    await world.deps.store.replace(MESSAGES, doc)
    assert await dispatch.dispatch(world.deps, job) == "sent"
    assert len(sender.calls) == 1
    assert sender.calls[0].idempotency_key == msg["id"]


async def test_a_second_job_while_a_send_is_in_flight_is_dropped(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    doc = await stored(world, msg["id"])
    doc["status"] = "sending"
    doc["claim"] = {"job": "someone-else", "at": doc["created_at"]}
    await world.deps.store.replace(MESSAGES, doc)
    job = DispatchJob(world.tenant_id, msg["id"], f"{msg['id']}:1")
    assert await dispatch.dispatch(world.deps, job) == "dropped"
    world.clock.advance(timedelta(seconds=SETTINGS.OCM_CLAIM_TIMEOUT_SECONDS + 1))
    assert await dispatch.dispatch(world.deps, job) == "sent"  # the claim was abandoned


async def test_a_cancelled_message_is_not_sent(world: World) -> None:
    sender = CountingSender()
    world.deps.senders = {"sandbox": sender}
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    await messages.cancel_message(world.deps, world.tenant_id, msg["id"])
    assert await run_job(world) == "dropped"
    assert sender.calls == []


async def test_an_expired_message_is_not_sent(world: World) -> None:
    expires = (world.clock.now() + timedelta(seconds=5)).isoformat()
    msg = await intake.accept_message(world.deps, world.tenant_id, message(expires_at=expires))
    world.clock.advance(timedelta(seconds=6))
    assert await run_job(world) == "expired"
    assert (await stored(world, msg["id"]))["status"] == "expired"


async def test_events_reach_the_topic_once_each_with_deterministic_ids(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    await run_job(world)
    receipts = await world.queue.receive(SETTINGS.OCM_PROVIDER_EVENTS_QUEUE)
    await provider_events.handle(world.deps, receipts[0].body)
    await provider_events.handle(world.deps, receipts[0].body)  # a repeated receipt
    entity = f"{SETTINGS.OCM_EVENTS_TOPIC}/subscriptions/{SETTINGS.OCM_EVENTS_LOG_SUBSCRIPTION}"
    events = await world.queue.receive(entity, max_messages=50)
    bodies = [orjson.loads(e.body) for e in events]
    assert [b["type"] for b in bodies] == ["message.queued", "message.sent", "message.delivered"]
    suffix = msg["id"].removeprefix("msg_")
    assert [e.message_id for e in events] == [f"evt_{suffix}_{i}" for i in range(3)]
    assert all(b["data"]["message_id"] == msg["id"] for b in bodies)
    doc = await stored(world, msg["id"])
    assert doc["pending_events"] == []


async def test_a_paused_channel_holds_messages_without_using_attempts_or_throttles(
    world: World,
) -> None:
    from shared.domain.channels import ChannelUpdate
    from shared.services.channels import channels

    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    await channels.update_channel(
        world.deps, world.tenant_id, "sandbox", ChannelUpdate(status="paused")
    )
    for _ in range(SETTINGS.OCM_MAX_THROTTLES + 1):
        assert await run_job(world) == "paused"
        world.clock.advance(timedelta(seconds=SETTINGS.OCM_PAUSED_RECHECK_SECONDS))
    doc = await stored(world, msg["id"])
    assert (doc["status"], doc["attempts"], doc.get("throttles", 0)) == ("queued", 0, 0)
    await channels.update_channel(
        world.deps, world.tenant_id, "sandbox", ChannelUpdate(status="active")
    )
    assert await run_job(world) == "sent"
