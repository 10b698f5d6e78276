"""Throttling is back-pressure, never failure (azure review L2).

The Cosmos adapter runs against the local Cosmos server, which answers 429
TooManyRequests with ``x-ms-retry-after-ms`` on a schedule (tests/support/
cosmos_server.js), past the SDK's own nine retries. The triggers are the app's
own functions (function_app.py), called as the host calls them, on the embedded
queue: a throttled trigger puts its message back for later and returns normally
(no delivery count spent, nothing dead-lettered, no message failed); the API
answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import function_app
from ocm_cli.triggers import app_functions, to_functions_message
from shared import bootstrap
from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client, create_containers
from shared.api.app import create_app
from shared.config import Settings
from shared.containers import CONTAINERS, MESSAGES
from shared.ports import ReceivedMessage, Throttled
from shared.services import backpressure
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.webhook_receiver import WebhookReceiver
from tests.support import cosmos
from tests.support.cosmos import CosmosServer

FUNCTIONS = {
    fn.get_function_name(): fn.get_user_function() for fn in app_functions(function_app.app)
}
SPENT = 1000  # more 429s than the SDK retries: every call is throttled for good


@pytest.fixture(scope="module")
def server() -> Iterator[CosmosServer]:
    with cosmos.running() as running:
        yield running


@pytest.fixture
async def deps(server: CosmosServer, tmp_path: Path) -> AsyncIterator[Deps]:
    """The platform on Cosmos (the local server) and the embedded queue."""
    name = f"t{uuid.uuid4().hex[:12]}"
    client = build_cosmos_client(server.endpoint, server.key)
    await client.__aenter__()
    database = await client.create_database_if_not_exists(name)
    await create_containers(database, CONTAINERS)
    settings = Settings(
        OCM_DATA_DIR=tmp_path, OCM_ALLOW_PRIVATE_EGRESS=True, OCM_RATE_LIMIT_PER_SECOND=0
    )
    embedded = bootstrap.build(settings)
    store = CosmosDocumentStore(database, CONTAINERS, client=client)
    built = bootstrap.platform(settings, store, embedded.queue, embedded.secrets, embedded.clock)
    bootstrap.set_deps(built)
    yield built
    bootstrap.set_deps(None)
    server.throttle(0)
    await built.webhook_http.close()
    await client.delete_database(name)
    await client.close()
    await bootstrap.close(embedded)


@pytest.fixture
async def api(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
        yield client


async def tenant(api: httpx.AsyncClient, deps: Deps) -> tuple[str, dict[str, str]]:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    answer = await api.post(
        "/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key
    )
    assert answer.status_code == 201, answer.text
    return created.tenant["id"], key


async def send(api: httpx.AsyncClient, key: dict[str, str]) -> str:
    answer = await api.post(
        "/api/v1/messages",
        json={
            "channel": "sandbox",
            "receiver": {"type": "phone", "address": "+4791234567"},
            "content": {"type": "text", "text": "hi"},
        },
        headers=key,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def one(deps: Deps, entity: str, timeout: float = 5.0) -> ReceivedMessage:
    """The next message of ``entity`` (waiting for a scheduled one to fall due)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await deps.queue.receive(entity)
        if got:
            return got[0]
        assert asyncio.get_running_loop().time() < deadline, f"nothing on {entity}"
        await asyncio.sleep(0.05)


async def run(deps: Deps, function: str, entity: str, timeout: float = 5.0) -> ReceivedMessage:
    """Receive one message of ``entity``, call the trigger with it as the host does,
    and complete it (autoCompleteMessages) — the trigger returned normally."""
    received = await one(deps, entity, timeout)
    await FUNCTIONS[function](to_functions_message(received))
    await deps.queue.complete(entity, received)
    return received


async def status(deps: Deps, tenant_id: str, message_id: str) -> str:
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    assert doc is not None
    return str(doc["status"])


async def test_the_cosmos_adapter_turns_429_past_the_sdks_retries_into_throttled(
    deps: Deps, server: CosmosServer
) -> None:
    server.throttle(SPENT, retry_after_ms=7)
    with pytest.raises(Throttled) as throttled:
        await deps.store.read(MESSAGES, "tn_x", "msg_x")
    assert throttled.value.retry_after == pytest.approx(0.007)
    assert server.throttled()["answered"] == 10  # the first try and the SDK's nine


async def test_a_few_429s_are_absorbed_by_the_sdk(deps: Deps, server: CosmosServer) -> None:
    server.throttle(3, retry_after_ms=5)
    assert await deps.store.read(MESSAGES, "tn_x", "msg_x") is None
    assert server.throttled() == {"left": 0, "answered": 3}


async def test_the_api_answers_503_with_retry_after_when_the_store_throttles(
    api: httpx.AsyncClient, deps: Deps, server: CosmosServer
) -> None:
    _, key = await tenant(api, deps)
    server.throttle(SPENT, retry_after_ms=5)
    answer = await api.get("/api/v1/messages", headers=key)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"  # whole seconds, at least one
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "TEMPORARILY_OVERLOADED"


async def test_a_throttled_dispatch_and_receipt_come_back_later_and_deliver(
    api: httpx.AsyncClient, deps: Deps, server: CosmosServer
) -> None:
    tenant_id, key = await tenant(api, deps)
    message_id = await send(api, key)
    outbound = deps.settings.OCM_OUTBOUND_QUEUE
    server.throttle(SPENT, retry_after_ms=20)
    job = await run(deps, "dispatch_message", outbound)  # returns: no raise, no abandon
    server.throttle(0)
    again = await one(deps, outbound)
    assert again.message_id == f"{job.message_id}~throttled-1"
    assert again.body == job.body and again.delivery_count == 1
    assert again.application_properties[backpressure.THROTTLED] == 1
    await deps.queue.abandon(outbound, again)
    assert await status(deps, tenant_id, message_id) == "queued"
    await run(deps, "dispatch_message", outbound)
    assert await status(deps, tenant_id, message_id) == "sent"

    events = deps.settings.OCM_PROVIDER_EVENTS_QUEUE
    server.throttle(SPENT, retry_after_ms=20)
    receipt = await run(deps, "apply_provider_event", events)
    server.throttle(0)
    back = await one(deps, events)
    assert back.message_id == f"{receipt.message_id}~throttled-1"
    await deps.queue.abandon(events, back)
    await run(deps, "apply_provider_event", events)
    assert await status(deps, tenant_id, message_id) == "delivered"
    dead = await deps.queue.receive(f"{outbound}/$DeadLetterQueue")
    assert dead == []


async def test_throttled_again_waits_longer_each_time(
    api: httpx.AsyncClient, deps: Deps, server: CosmosServer
) -> None:
    _, key = await tenant(api, deps)
    await send(api, key)
    outbound = deps.settings.OCM_OUTBOUND_QUEUE
    server.throttle(SPENT, retry_after_ms=100)
    first = await run(deps, "dispatch_message", outbound)
    second = await run(deps, "dispatch_message", outbound, timeout=10)
    assert second.message_id == f"{first.message_id}~throttled-1"
    put_back = asyncio.get_running_loop().time()
    third = await one(deps, outbound, timeout=10)
    assert third.message_id == f"{first.message_id}~throttled-2"  # the root id, not nested
    assert asyncio.get_running_loop().time() - put_back >= 0.2  # twice the advice at least


async def test_a_throttled_webhook_delivery_comes_back_later_and_is_delivered(
    api: httpx.AsyncClient, deps: Deps, server: CosmosServer
) -> None:
    _, key = await tenant(api, deps)
    with WebhookReceiver().running() as peer:
        receiver: Any = peer
        hook = await api.post(
            "/api/v1/webhooks",
            json={"url": f"{receiver.url}/hook", "events": ["message.queued"]},
            headers=key,
        )
        assert hook.status_code == 201, hook.text
        await send(api, key)
        topic = deps.settings.OCM_EVENTS_TOPIC
        subscription = f"{topic}/subscriptions/{deps.settings.OCM_WEBHOOKS_SUBSCRIPTION}"
        # Fewer 429s than the SDK retries twice over: the fan-out waits in place.
        server.throttle(15, retry_after_ms=20)
        await run(deps, "fan_out_event", subscription)
        assert server.throttled()["answered"] == 15
        webhooks = deps.settings.OCM_WEBHOOK_QUEUE
        server.throttle(SPENT, retry_after_ms=20)
        attempt = await run(deps, "deliver_webhook", webhooks)
        server.throttle(0)
        assert receiver.calls == []
        back = await one(deps, webhooks)
        assert back.message_id == f"{attempt.message_id}~throttled-1"
        await deps.queue.abandon(webhooks, back)
        await run(deps, "deliver_webhook", webhooks)
        [call] = receiver.calls
        assert orjson.loads(call.body)["type"] == "message.queued"


async def test_a_dead_letter_trigger_never_raises_and_puts_the_job_back_when_throttled(
    api: httpx.AsyncClient, deps: Deps, server: CosmosServer, caplog: pytest.LogCaptureFixture
) -> None:
    tenant_id, key = await tenant(api, deps)
    message_id = await send(api, key)
    outbound = deps.settings.OCM_OUTBOUND_QUEUE
    job = await one(deps, outbound)
    await deps.queue.dead_letter(outbound, job, "MaxDeliveryCountExceeded")
    server.throttle(SPENT, retry_after_ms=20)
    await run(deps, "fail_dead_lettered", f"{outbound}/$DeadLetterQueue")
    server.throttle(0)
    back = await one(deps, outbound)
    assert back.message_id == f"{job.message_id}~throttled-1" and back.body == job.body
    assert await status(deps, tenant_id, message_id) == "queued"  # not failed for good
    caplog.set_level(logging.ERROR)
    broken: Any = to_functions_message(
        ReceivedMessage(
            message_id="junk",
            body=b"{not json",
            subject=None,
            application_properties={},
            delivery_count=1,
            enqueued_at=job.enqueued_at,
            lock_token="t",
            dead_letter_reason=None,
        )
    )
    await FUNCTIONS["fail_dead_webhook"](broken)  # unreadable: logged, never raised
    assert "dead-lettered webhook delivery job" in caplog.text
