"""The Functions app as Azure runs it: every trigger called with real
``azure.functions`` objects, the HTTP one through AsgiMiddleware."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

import function_app
from ocm_cli.triggers import app_functions, discover, to_functions_message
from shared import bootstrap
from shared.config import Settings
from shared.containers import EVENTS, MESSAGES
from shared.domain.jobs import dispatch_job_id
from shared.domain.timeline import schedule
from shared.services.channels import channels
from shared.services.deps import Deps
from shared.services.messaging import intake
from shared.services.onboarding import signup

FUNCTIONS = {
    fn.get_function_name(): fn.get_user_function() for fn in app_functions(function_app.app)
}


class Context(func.Context):
    """The invocation context the host passes (the SDK leaves it abstract)."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def invocation_id(self) -> str:
        return "test-invocation"

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return threading.local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return str(Path(function_app.__file__).parent)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


@pytest.fixture
def deps(tmp_path: Path) -> Iterator[Deps]:
    settings = Settings(OCM_DATA_DIR=tmp_path, OCM_OUTBOX_GRACE_SECONDS=0)
    built = bootstrap.build(settings)
    bootstrap.set_deps(built)
    yield built
    bootstrap.set_deps(None)
    for closer in built.closers:
        closer()


async def http(method: str, path: str, key: str, body: Any = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method=method,
        url=f"http://localhost:7071{path}",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        body=orjson.dumps(body) if body is not None else b"",
    )
    response: func.HttpResponse = await FUNCTIONS["http_app_func"](
        request, Context("http_app_func")
    )
    return response


async def deliver(deps: Deps, entity: str, function: str) -> int:
    """Hand every due message of an entity to a trigger, settling as the host does."""
    handled = 0
    while batch := await deps.queue.receive(entity, max_messages=10):
        for received in batch:
            await FUNCTIONS[function](to_functions_message(received))
            await deps.queue.complete(entity, received)
            handled += 1
    return handled


def test_every_queue_topic_and_timer_trigger_is_discovered() -> None:
    settings = Settings()
    found = {(t.name, t.kind, t.target) for t in discover(function_app.app, settings)}
    assert found == {
        ("dispatch_message", "queue", "ocm-outbound"),
        ("fail_dead_lettered", "queue", "ocm-outbound/$DeadLetterQueue"),
        ("apply_provider_event", "queue", "ocm-provider-events"),
        ("log_dead_provider_event", "queue", "ocm-provider-events/$DeadLetterQueue"),
        ("log_event", "queue", "ocm-events/subscriptions/ocm-events-log"),
        ("log_dead_event", "queue", "ocm-events/subscriptions/ocm-events-log/$DeadLetterQueue"),
        ("fan_out_event", "queue", "ocm-events/subscriptions/ocm-webhooks"),
        ("keep_dead_fan_out", "queue", "ocm-events/subscriptions/ocm-webhooks/$DeadLetterQueue"),
        ("count_events", "queue", "ocm-events/subscriptions/ocm-analytics"),
        ("note_dead_event", "queue", "ocm-events/subscriptions/ocm-analytics/$DeadLetterQueue"),
        ("deliver_webhook", "queue", "ocm-webhook-deliveries"),
        ("fail_dead_webhook", "queue", "ocm-webhook-deliveries/$DeadLetterQueue"),
        ("outbox_sweep", "timer", "*/30 * * * * *"),
        ("housekeeping_sweep", "timer", "0 */10 * * * *"),
        ("analytics_reconcile", "timer", "0 15 * * * *"),
    }


async def test_a_message_travels_through_the_http_queue_and_topic_functions(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await signup.create_tenant(deps, "acme")
    created = await http(
        "POST", "/api/v1/channels", tenant.api_key, {"name": "sandbox", "type": "sandbox"}
    )
    assert created.status_code == 201
    sent = await http(
        "POST",
        "/api/v1/messages",
        tenant.api_key,
        {
            "channel": "sandbox",
            "receiver": {"type": "email", "address": "bob@example.com"},
            "content": {"type": "text", "text": "hi"},
            "options": {"sandbox": {"delivery": "failed", "error_code": "30003"}},
        },
    )
    assert sent.status_code == 202
    message_id = orjson.loads(sent.get_body())["id"]
    settings = deps.settings
    assert await deliver(deps, settings.OCM_OUTBOUND_QUEUE, "dispatch_message") == 1
    assert await deliver(deps, settings.OCM_PROVIDER_EVENTS_QUEUE, "apply_provider_event") == 1
    shown = await http("GET", f"/api/v1/messages/{message_id}", tenant.api_key)
    assert orjson.loads(shown.get_body())["status"] == "failed"
    with caplog.at_level(logging.INFO, logger="ocm.events"):
        entity = f"{settings.OCM_EVENTS_TOPIC}/subscriptions/{settings.OCM_EVENTS_LOG_SUBSCRIPTION}"
        # queued, sent and failed were published; the subscription's rule keeps failures
        assert await deliver(deps, entity, "log_event") == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "ocm.events"]
    assert " message.failed " in line and "code=30003" in line and "bob@" not in line


async def test_a_problem_comes_back_through_the_http_function(deps: Deps) -> None:
    response = await http("GET", "/api/v1/messages", "ocm_nope")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert orjson.loads(response.get_body())["code"] == "INVALID_CREDENTIALS"


async def _accept(deps: Deps) -> tuple[str, str]:
    tenant = await signup.create_tenant(deps, "acme")
    tenant_id = tenant.tenant["id"]
    await channels.create_channel(
        deps, tenant_id, channels.ChannelCreate(name="sandbox", type="sandbox")
    )
    body = {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "bob@example.com"},
        "content": {"type": "text", "text": "hi"},
    }
    msg = await intake.accept_message(deps, tenant_id, body)
    return tenant_id, msg["id"]


async def test_the_dead_letter_function_fails_what_the_queue_gave_up_on(deps: Deps) -> None:
    tenant_id, message_id = await _accept(deps)
    queue = deps.settings.OCM_OUTBOUND_QUEUE
    [received] = await deps.queue.receive(queue)
    await deps.queue.dead_letter(queue, received, "MaxDeliveryCountExceeded")
    assert await deliver(deps, f"{queue}/$DeadLetterQueue", "fail_dead_lettered") == 1
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    assert doc is not None
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "DEAD_LETTERED"
    assert "MaxDeliveryCountExceeded" in doc["error"]["reason"]


def dead_letter(body: bytes, **properties: str) -> func.ServiceBusMessage:
    """A dead-lettered message as the Functions host passes it in Azure: the reason
    only in the application properties (the extension's metadata has no
    DeadLetterReason, so the SDK's attribute is None)."""
    return ServiceBusMessage(
        body=body,
        message_id="m1",
        dead_letter_reason=None,
        application_properties=dict(properties),
        user_properties=dict(properties),
    )


async def test_the_reason_a_message_was_dead_lettered_is_read_as_azure_gives_it(
    deps: Deps,
) -> None:
    """Azure review C4: every dead letter said "no reason given" in Azure."""
    tenant_id, message_id = await _accept(deps)
    [received] = await deps.queue.receive(deps.settings.OCM_OUTBOUND_QUEUE)
    given = {
        "DeadLetterReason": "MaxDeliveryCountExceeded",
        "DeadLetterErrorDescription": "Message could not be consumed after 10 delivery attempts.",
    }
    await FUNCTIONS["fail_dead_lettered"](dead_letter(received.body, **given))
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    assert doc is not None and doc["status"] == "failed"
    assert "MaxDeliveryCountExceeded: Message could not be consumed" in doc["error"]["reason"]


async def test_an_event_the_webhooks_subscription_gave_up_on_is_kept_for_replay(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    """Azure review L5: the subscriptions' dead-letter queues had no consumer, so a
    failed fan-out was lost without a word and the topic's quota filled."""
    tenant_id, message_id = await _accept(deps)
    event = {
        "id": "evt_dead1",
        "type": "message.failed",
        "tenant_id": tenant_id,
        "created_at": "2026-12-07T10:00:00Z",
        "data": {"message_id": message_id, "status": "failed"},
    }
    with caplog.at_level(logging.ERROR):
        await FUNCTIONS["keep_dead_fan_out"](
            dead_letter(orjson.dumps(event), DeadLetterReason="MaxDeliveryCountExceeded")
        )
        await FUNCTIONS["keep_dead_fan_out"](dead_letter(b"{not json"))
        await FUNCTIONS["log_dead_event"](
            dead_letter(orjson.dumps(event), DeadLetterReason="TTLExpiredException")
        )
    kept = await deps.store.read(EVENTS, tenant_id, "evt_dead1")
    assert kept is not None and kept["type"] == "message.failed"
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("evt_dead1" in s and "MaxDeliveryCountExceeded" in s for s in said), said
    assert any("unreadable" in s for s in said)
    assert any("evt_dead1" in s and "TTLExpiredException" in s for s in said)


async def test_the_outbox_timer_re_enqueues_a_job_lost_after_persisting(deps: Deps) -> None:
    tenant_id, message_id = await _accept(deps)
    queue = deps.settings.OCM_OUTBOUND_QUEUE
    [received] = await deps.queue.receive(queue)
    await deps.queue.complete(queue, received)  # as if the enqueue had never happened
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    assert doc is not None
    schedule(doc, dispatch_job_id(message_id, 1, "lost"), 1, deps.clock.now())
    await deps.store.replace(MESSAGES, doc)
    await FUNCTIONS["outbox_sweep"](TimerRequest(past_due=True))
    [again] = await deps.queue.receive(queue)
    assert again.message_id == f"{message_id}:1:lost"
    await FUNCTIONS["dispatch_message"](to_functions_message(again))
    doc = await deps.store.read(MESSAGES, tenant_id, message_id)
    assert doc is not None and doc["status"] == "sent"


async def test_housekeeping_purges_expired_documents_and_is_safe_twice(deps: Deps) -> None:
    from shared.containers import IDEMPOTENCY

    await deps.store.create(IDEMPOTENCY, {"id": "idem_x", "tenant_id": "tn_x", "ttl": 1})
    db = deps.store._db  # type: ignore[attr-defined]  # to see rows TTL hides
    count = "SELECT COUNT(*) FROM documents WHERE id = 'idem_x'"
    assert db.connection.execute(count).fetchone()[0] == 1
    await asyncio.sleep(1.1)
    await FUNCTIONS["housekeeping_sweep"](TimerRequest(past_due=False))
    await FUNCTIONS["housekeeping_sweep"](TimerRequest(past_due=True))
    assert db.connection.execute(count).fetchone()[0] == 0


class LockedOnce:
    """The embedded queue, but the first receive finds the file locked."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    async def receive(self, entity: str, **options: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return await self.inner.receive(entity, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_consumer_survives_a_failed_receive(deps: Deps) -> None:
    from ocm_cli.local_runtime import LocalRuntime

    deps.queue = LockedOnce(deps.queue)
    tenant_id, message_id = await _accept(deps)
    runtime = LocalRuntime(function_app.app, deps)
    runtime.triggers = [t for t in runtime.triggers if t.name == "dispatch_message"]
    consumers = asyncio.create_task(runtime.run_consumers())
    try:
        for _ in range(100):
            doc = await deps.store.read(MESSAGES, tenant_id, message_id)
            if doc is not None and doc["status"] == "sent":
                break
            await asyncio.sleep(0.05)
        assert deps.queue.failed
        assert doc is not None and doc["status"] == "sent"
    finally:
        runtime.stopping.set()
        await consumers


async def test_a_dead_lettered_provider_event_is_logged_for_an_operator(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.ports import ProviderEvent
    from shared.services.delivery import provider_events

    await provider_events.enqueue(
        deps,
        [ProviderEvent("receipt", {"channel_id": "ch_x", "event_id": "e1", "status": "sent"})],
    )
    queue = deps.settings.OCM_PROVIDER_EVENTS_QUEUE
    [received] = await deps.queue.receive(queue)
    await deps.queue.dead_letter(queue, received, "MaxDeliveryCountExceeded")
    with caplog.at_level(logging.ERROR):
        assert await deliver(deps, f"{queue}/$DeadLetterQueue", "log_dead_provider_event") == 1
    [line] = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert "receipt for channel ch_x" in line and "MaxDeliveryCountExceeded" in line


async def test_http_goes_first_but_dispatch_never_stops(deps: Deps) -> None:
    """Under a burst of requests a consumer waits (at most HTTP_FIRST_MAX_WAIT per
    batch); when HTTP is quiet it does not wait at all."""
    from ocm_cli import local_runtime
    from ocm_cli.local_runtime import LocalRuntime

    runtime = LocalRuntime(function_app.app, deps)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await runtime._defer()
    assert loop.time() - started < 0.01  # no HTTP: no wait

    gate = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()

    counted = runtime.counting(slow_app)
    request = asyncio.create_task(counted({"type": "http"}, None, None))
    await asyncio.sleep(0)
    assert runtime.http_in_flight == 1
    started = loop.time()
    await runtime._defer()  # a request in progress: waits, but only so long
    waited = loop.time() - started
    assert (
        local_runtime.HTTP_FIRST_MAX_WAIT * 0.9 <= waited < local_runtime.HTTP_FIRST_MAX_WAIT + 0.05
    )

    gate.set()
    await request
    assert runtime.http_in_flight == 0
    started = loop.time()
    await runtime._defer()  # the request just ended: waits for a short quiet spell only
    assert loop.time() - started < local_runtime.HTTP_QUIET + 0.02
    await counted({"type": "lifespan"}, None, None)  # only HTTP is counted
    assert runtime.http_in_flight == 0
