"""Accepting, listing and cancelling messages, one at a time and in batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.containers import MESSAGES
from shared.domain.errors import (
    ConflictError,
    NotFoundError,
    OcmError,
    PayloadTooLarge,
    ValidationFailed,
)
from shared.domain.jobs import DispatchJob
from shared.domain.messages import to_utc_text
from shared.ports import Filter, Query
from shared.services.channels import channels
from shared.services.delivery import dispatch
from shared.services.delivery.inbound import receive_inbound
from shared.services.messaging import intake, messages
from shared.services.messaging.messages import MessageFilter
from tests.unit.conftest import SETTINGS, World, sandbox_message

OUTBOUND = SETTINGS.OCM_OUTBOUND_QUEUE


message = sandbox_message


async def stored_count(world: World) -> int:
    page = await world.deps.store.query(MESSAGES, Query(scope=world.tenant_id, limit=5000))
    return len(page.items)


async def listed(world: World, **flt: Any) -> list[str]:
    page = await messages.list_messages(
        world.deps, world.tenant_id, MessageFilter(**flt), limit=100, cursor=None
    )
    return [m["id"] for m in page.items]


async def test_a_batch_accepts_and_refuses_each_item_on_its_own(world: World) -> None:
    batch = [
        message(),
        message(receiver={"type": "phone", "address": "4791234567"}),
        message(channel="nowhere"),
        "not an object",
        message(),
    ]
    result = await intake.accept_batch(world.deps, world.tenant_id, batch, {})
    assert [i["index"] for i in result.items] == [0, 1, 2, 3, 4]
    assert [i["status"] for i in result.items] == [
        "queued",
        "rejected",
        "rejected",
        "rejected",
        "queued",
    ]
    assert [i["error"]["code"] for i in result.items if i["error"]] == [
        "VALIDATION_FAILED",
        "CHANNEL_NOT_FOUND",
        "VALIDATION_FAILED",
    ]
    assert result.items[1]["error"]["errors"] == [
        {
            "field": "receiver.address",
            "message": "must be an E.164 phone number (+ and country code)",
        }
    ]
    assert result.items[1]["id"] is None
    assert await stored_count(world) == 2
    jobs = await world.queue.receive(OUTBOUND, max_messages=10)
    assert sorted(j.message_id for j in jobs) == sorted(
        f"{i['id']}:1" for i in result.items if i["id"]
    )


async def test_an_items_context_overrides_the_batchs(world: World) -> None:
    batch = [message(context={"order": "A-17", "step": 2}), message()]
    ctx = {"campaign": "spring", "step": 1}
    result = await intake.accept_batch(world.deps, world.tenant_id, batch, ctx)
    first, second = [
        await messages.get_message(world.deps, world.tenant_id, i["id"]) for i in result.items
    ]
    assert first["context"] == {"campaign": "spring", "step": 2, "order": "A-17"}
    assert second["context"] == ctx
    assert first["batch_id"] == second["batch_id"] == result.batch_id
    assert result.batch_id.startswith("bat_")


async def test_a_batch_of_more_than_1000_is_refused_whole(world: World) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await intake.accept_batch(world.deps, world.tenant_id, [message()] * 1001, {})
    assert caught.value.code == "BATCH_TOO_LARGE"
    assert caught.value.status == 413
    assert await stored_count(world) == 0


async def test_a_batch_of_exactly_1000_is_accepted(world: World) -> None:
    result = await intake.accept_batch(world.deps, world.tenant_id, [message()] * 1000, {})
    assert {i["status"] for i in result.items} == {"queued"}


async def test_a_message_over_256_kib_is_too_large(world: World) -> None:
    huge = message(context={f"k{i}": "x" * 6000 for i in range(45)})
    with pytest.raises(PayloadTooLarge) as caught:
        await intake.accept_message(world.deps, world.tenant_id, huge)
    assert caught.value.code == "MESSAGE_TOO_LARGE"
    result = await intake.accept_batch(world.deps, world.tenant_id, [huge, message()], {})
    assert result.items[0]["error"]["code"] == "MESSAGE_TOO_LARGE"
    assert result.items[1]["status"] == "queued"


def sized(size: int) -> dict[str, Any]:
    """A message whose JSON is exactly ``size`` bytes (padded by an attachment's
    base64, whose length must be a multiple of 4, and the text for the rest)."""
    body = message()
    body["content"]["attachments"] = [{"filename": "a.bin", "content_type": "a/b", "content": ""}]
    pad = size - len(orjson.dumps(body))
    body["content"]["attachments"][0]["content"] = "A" * (pad - pad % 4)
    body["content"]["text"] += "x" * (pad % 4)
    assert len(orjson.dumps(body)) == size
    return body


async def test_a_message_of_exactly_256_kib_is_accepted(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, sized(256 * 1024))
    assert msg["status"] == "queued"
    with pytest.raises(PayloadTooLarge):
        await intake.accept_message(world.deps, world.tenant_id, sized(256 * 1024 + 1))


async def test_a_message_to_send_later_is_scheduled_with_its_job_due_then(world: World) -> None:
    send_at = world.clock.now() + timedelta(hours=2)
    msg = await intake.accept_message(
        world.deps, world.tenant_id, message(send_at=send_at.isoformat())
    )
    assert msg["status"] == "scheduled"
    doc = await messages.get_message(world.deps, world.tenant_id, msg["id"])
    assert doc["dispatch"]["due_at"] == to_utc_text(send_at)
    assert doc["events"][0]["type"] == "message.scheduled"
    assert await world.queue.receive(OUTBOUND) == []
    world.clock.set(send_at)
    assert [j.message_id for j in await world.queue.receive(OUTBOUND)] == [f"{msg['id']}:1"]


async def test_a_send_time_in_the_past_is_sent_now(world: World) -> None:
    send_at = world.clock.now() - timedelta(minutes=5)
    msg = await intake.accept_message(
        world.deps, world.tenant_id, message(send_at=send_at.isoformat())
    )
    assert msg["status"] == "queued"


async def test_a_message_that_has_already_expired_is_refused(world: World) -> None:
    expired = (world.clock.now() - timedelta(seconds=1)).isoformat()
    with pytest.raises(ValidationFailed) as caught:
        await intake.accept_message(
            world.deps, world.tenant_id, message(options={"expires_at": expired})
        )
    assert caught.value.code == "MESSAGE_EXPIRED"
    assert await stored_count(world) == 0


async def test_a_message_sent_after_it_expires_is_refused(world: World) -> None:
    now = world.clock.now()
    with pytest.raises(ValidationFailed) as caught:
        await intake.accept_message(
            world.deps,
            world.tenant_id,
            message(
                send_at=(now + timedelta(hours=2)).isoformat(),
                options={"expires_at": (now + timedelta(hours=1)).isoformat()},
            ),
        )
    assert [e.field for e in caught.value.errors] == ["send_at"]


async def test_messages_are_listed_by_status_channel_and_direction(world: World) -> None:
    channel = await channels.get_channel(world.deps, world.tenant_id, "sandbox")
    inbound = {
        "tenant_id": world.tenant_id,
        "channel_id": channel["id"],
        "provider_message_id": "sbx-in-1",
        "sender": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "STOP"},
    }
    assert await receive_inbound(world.deps, inbound) == "received"
    sent = await intake.accept_message(world.deps, world.tenant_id, message())
    queued = await intake.accept_message(world.deps, world.tenant_id, message())
    received = await world.queue.receive(OUTBOUND, max_messages=10)
    job = next(r for r in received if r.message_id == f"{sent['id']}:1")
    assert await dispatch.dispatch(world.deps, DispatchJob.decode(job.body)) == "sent"
    assert await listed(world, status="sent") == [sent["id"]]
    assert await listed(world, status="queued") == [queued["id"]]
    assert len(await listed(world, channel="SANDBOX")) == 3
    assert await listed(world, channel="no-such-channel") == []
    assert sorted(await listed(world, direction="outbound")) == sorted([sent["id"], queued["id"]])
    assert len(await listed(world, direction="inbound")) == 1
    assert len(await listed(world, channel="sandbox")) == 3
    assert await listed(world, direction="inbound", status="queued") == []


async def test_messages_are_listed_newest_first_within_since_and_until(world: World) -> None:
    ids = []
    for _ in range(4):
        ids.append((await intake.accept_message(world.deps, world.tenant_id, message()))["id"])
        world.clock.advance(60)
    start = world.clock.now() - timedelta(minutes=4)
    assert await listed(world) == ids[::-1]
    assert await listed(world, since=start + timedelta(minutes=1)) == ids[:0:-1]
    assert await listed(world, until=start + timedelta(minutes=2)) == ids[1::-1]
    window = {"since": start + timedelta(minutes=1), "until": start + timedelta(minutes=3)}
    assert await listed(world, **window) == [ids[2], ids[1]]


async def test_pages_follow_the_cursor_to_the_end(world: World) -> None:
    ids = set()
    for _ in range(5):
        ids.add((await intake.accept_message(world.deps, world.tenant_id, message()))["id"])
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await messages.list_messages(
            world.deps, world.tenant_id, MessageFilter(), limit=2, cursor=cursor
        )
        seen += [m["id"] for m in page.items]
        cursor = page.next_cursor
    assert cursor is None
    assert len(seen) == 5
    assert set(seen) == ids


async def test_a_cursor_from_elsewhere_is_refused(world: World) -> None:
    with pytest.raises(OcmError) as caught:
        await messages.list_messages(
            world.deps, world.tenant_id, MessageFilter(), limit=2, cursor="garbage"
        )
    assert (caught.value.code, caught.value.status) == ("INVALID_CURSOR", 400)


async def test_a_queued_message_can_be_cancelled(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    cancelled = await messages.cancel_message(world.deps, world.tenant_id, msg["id"])
    assert cancelled["status"] == "cancelled"
    assert "tenant_id" not in cancelled  # internal fields stay inside


async def test_a_sent_message_cannot_be_cancelled(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    job = (await world.queue.receive(OUTBOUND))[0]
    assert await dispatch.dispatch(world.deps, DispatchJob.decode(job.body)) == "sent"
    with pytest.raises(ConflictError) as caught:
        await messages.cancel_message(world.deps, world.tenant_id, msg["id"])
    assert caught.value.code == "MESSAGE_NOT_CANCELLABLE"


async def test_another_tenants_message_is_not_found(world: World) -> None:
    msg = await intake.accept_message(world.deps, world.tenant_id, message())
    with pytest.raises(NotFoundError) as caught:
        await messages.get_message(world.deps, "tn_other", msg["id"])
    assert caught.value.code == "MESSAGE_NOT_FOUND"
    page = await world.deps.store.query(
        MESSAGES, Query(scope="tn_other", where=(Filter("id", "eq", msg["id"]),))
    )
    assert page.items == []


async def test_an_attachment_that_is_not_base64_is_refused_at_once(world: World) -> None:
    content = {
        "type": "text",
        "text": "see attached",
        "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "content": "%%"}],
    }
    with pytest.raises(ValidationFailed) as refused:
        await intake.accept_message(world.deps, world.tenant_id, message(content=content))
    assert refused.value.errors[0].field.startswith("content.text.attachments.0.content")
