"""The webhook deliverer against a real endpoint on loopback: signed POSTs the
``standardwebhooks`` library verifies, retries on the subscription's schedule,
Retry-After, 410, redirects, timeouts, the egress guard, and endpoint health."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet

from shared import bootstrap
from shared.adapters.embedded.sqlite_queue import SqliteQueue
from shared.config import Settings
from shared.containers import WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhook_schemas import EndpointEventData
from shared.domain.webhooks import payload, webhook_headers_name, webhook_secret_name
from shared.services.deps import Deps
from shared.services.events import interest
from shared.services.webhooks import deliverer as webhook_delivery
from shared.services.webhooks import fanout as webhook_fanout
from tests.peers.webhook_receiver import Answer, WebhookReceiver

TENANT = "ten_01jwebhooks0000000000000000"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


SECRET = new_secret()


@asynccontextmanager
async def platform(settings: Settings) -> AsyncIterator[Deps]:
    built = bootstrap.build(settings)
    try:
        yield built
    finally:
        await bootstrap.close(built)  # the deliverer's HTTP client with the rest


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Every event type reaches the log subscription: where platform events are seen.
    return Settings(OCM_DATA_DIR=tmp_path, OCM_EVENTS_LOG_TYPES="*")


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with platform(settings) as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    peer = WebhookReceiver(secrets=[SECRET])
    with peer.running():
        yield peer


async def subscribe(
    deps: Deps,
    url: str,
    secrets: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Document:
    """A subscription, its secrets and its custom header values, stored as the API
    stores them: the values in the secret store, their names on the document."""
    now = to_utc_text(deps.clock.now())
    doc: Document = {
        "id": new_id("whk"),
        "tenant_id": TENANT,
        "url": url,
        "description": None,
        "events": ["message.*"],
        "filters": {"channels": [], "direction": None},
        "header_names": sorted(headers or {}),
        "enabled": True,
        "retry_schedule": None,
        "disabled_reason": None,
        "failing_since": None,
        "failing_warned": False,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    written = await deps.store.create(WEBHOOKS, doc)
    entries = secrets if secrets is not None else [{"secret": SECRET, "expires_at": None}]
    await deps.secrets.set(webhook_secret_name(doc["id"]), orjson.dumps(entries).decode())
    if headers:
        await deps.secrets.set(webhook_headers_name(doc["id"]), orjson.dumps(headers).decode())
    return written


class CountingSecrets:
    """The platform's secret store, counting the reads of each name."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.reads = inner, dict[str, int]()

    async def get(self, name: str) -> str | None:
        self.reads[name] = self.reads.get(name, 0) + 1
        value: str | None = await self.inner.get(name)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def an_event(n: int = 1, event_type: str = "message.delivered") -> dict[str, Any]:
    message_id = f"msg_01jwebhookmessage{n:010d}"
    return {
        "id": f"evt_{message_id.removeprefix('msg_')}_2",
        "type": event_type,
        "timestamp": "2026-05-01T10:00:00.000Z",
        "tenant_id": TENANT,
        "data": {
            "message_id": message_id,
            "channel": "sms-main",
            "direction": "outbound",
            "status": "delivered",
            "context": {"order": "A-17"},
        },
    }


async def next_job(deps: Deps, within: float = 5.0) -> tuple[str, bytes] | None:
    """The next job that becomes visible within ``within`` seconds (completed)."""
    queue = deps.settings.OCM_WEBHOOK_QUEUE
    deadline = asyncio.get_running_loop().time() + within
    while True:
        got = await deps.queue.receive(queue)
        if got:
            await deps.queue.complete(queue, got[0])
            return got[0].message_id, got[0].body
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.05)


async def run_next_job(deps: Deps, within: float = 5.0) -> str:
    job = await next_job(deps, within)
    assert job is not None, "no delivery job became visible"
    return await webhook_delivery.deliver(deps, job[1])


async def deliver_once(deps: Deps, subscription: Document, n: int = 1) -> tuple[str, Document]:
    """Create a delivery of event ``n`` (as the fan-out does) and run its first job."""
    created = await webhook_fanout.create_delivery(deps, subscription, an_event(n))
    outcome = await run_next_job(deps)
    return outcome, await delivery(deps, created["id"])


async def delivery(deps: Deps, delivery_id: str) -> Document:
    doc = await deps.store.read(WEBHOOK_DELIVERIES, TENANT, delivery_id)
    assert doc is not None
    return doc


async def reread(deps: Deps, subscription: Document) -> Document:
    doc = await deps.store.read(WEBHOOKS, TENANT, subscription["id"])
    assert doc is not None
    return doc


async def jobs_waiting(deps: Deps) -> int:
    assert isinstance(deps.queue, SqliteQueue)
    counts = await deps.queue.counts(deps.settings.OCM_WEBHOOK_QUEUE)
    return counts["active"] + counts["scheduled"]


async def platform_events(deps: Deps) -> list[dict[str, Any]]:
    topic, log = deps.settings.OCM_EVENTS_TOPIC, deps.settings.OCM_EVENTS_LOG_SUBSCRIPTION
    entity = f"{topic}/subscriptions/{log}"
    received = await deps.queue.receive(entity, max_messages=100)
    return [orjson.loads(m.body) for m in received]


# ---------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------


async def test_a_delivery_is_signed_so_the_standard_webhooks_library_verifies_it(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    before = int(deps.clock.now().timestamp())

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "delivered"
    [call] = receiver.calls
    assert call.verified_by == (SECRET,)
    assert call.json() == payload(an_event())
    assert call.headers["webhook-id"] == an_event()["id"]
    assert before <= int(call.headers["webhook-timestamp"]) <= before + 5
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"].startswith("OCM/")
    assert doc["status"] == "delivered"
    assert doc["attempt_count"] == 1
    [attempt] = doc["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["response"] == "ok"
    assert attempt["error"] is None
    assert attempt["latency_ms"] >= 0
    assert await jobs_waiting(deps) == 0


async def test_a_signature_does_not_verify_with_another_secret(deps: Deps) -> None:
    stranger = WebhookReceiver(secrets=[new_secret()])
    with stranger.running():
        subscription = await subscribe(deps, stranger.hook_url())
        await deliver_once(deps, subscription)
    [call] = stranger.calls
    assert call.verified_by == ()


async def test_custom_headers_are_sent_but_cannot_replace_the_signature_or_the_framing(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    custom = {
        "X-Tenant": "acme",
        "Authorization": "Bearer abc",
        "webhook-id": "forged",
        "Webhook-Signature": "v1,forged",
        "Content-Type": "text/plain",
        "Host": "evil.example",
        "X-Split": "a\r\nInjected: yes",
    }
    subscription = await subscribe(deps, receiver.hook_url(), headers=custom)

    await deliver_once(deps, subscription)

    [call] = receiver.calls
    assert call.headers["x-tenant"] == "acme"
    assert call.headers["authorization"] == "Bearer abc"
    assert call.values("webhook-id") == [an_event()["id"]]
    assert len(call.values("webhook-signature")) == 1
    assert call.values("content-type") == ["application/json"]
    assert call.values("host") == [f"127.0.0.1:{receiver.port}"]
    assert "x-split" not in call.headers and "injected" not in call.headers
    assert call.verified_by == (SECRET,)
    assert b"Bearer abc" not in orjson.dumps(await reread(deps, subscription))


async def test_header_values_are_read_only_for_a_subscription_that_names_some(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    plain = await subscribe(deps, receiver.hook_url())
    named = await subscribe(deps, receiver.hook_url(), headers={"X-Key": "k1"})
    counting = CountingSecrets(deps.secrets)
    deps.secrets = counting  # type: ignore[assignment]

    await deliver_once(deps, plain, n=1)
    await deliver_once(deps, named, n=2)

    assert counting.reads == {
        webhook_secret_name(plain["id"]): 1,
        webhook_secret_name(named["id"]): 1,
        webhook_headers_name(named["id"]): 1,
    }
    assert "x-key" not in receiver.calls[0].headers
    assert receiver.calls[1].headers["x-key"] == "k1"


async def test_a_subscription_made_before_header_values_moved_sends_its_own(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    # Before the move a subscription kept its values on the document, without names.
    legacy = await subscribe(deps, receiver.hook_url())
    del legacy["header_names"]
    legacy["headers"] = {"Authorization": "Bearer legacy"}
    legacy = await deps.store.replace(WEBHOOKS, legacy)

    outcome, _ = await deliver_once(deps, legacy)

    assert outcome == "delivered"
    [call] = receiver.calls
    assert call.headers["authorization"] == "Bearer legacy"
    assert call.verified_by == (SECRET,)


async def test_a_subscription_whose_header_values_are_missing_is_not_posted_to(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url(), headers={"Authorization": "x"})
    await deps.secrets.delete(webhook_headers_name(subscription["id"]))

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    assert doc["attempts"][-1]["error"] == "WEBHOOK_HEADERS_MISSING"
    assert receiver.calls == []


async def test_after_a_rotation_both_unexpired_secrets_sign(deps: Deps) -> None:
    new, old, expired = new_secret(), new_secret(), new_secret()
    now = deps.clock.now()
    secrets: list[dict[str, Any]] = [
        {"secret": new, "expires_at": None},
        {"secret": old, "expires_at": to_utc_text(now + timedelta(hours=1))},
        {"secret": expired, "expires_at": to_utc_text(now - timedelta(seconds=1))},
    ]
    endpoint = WebhookReceiver(secrets=[new, old, expired])
    with endpoint.running():
        subscription = await subscribe(deps, endpoint.hook_url(), secrets=secrets)
        await deliver_once(deps, subscription)

    [call] = endpoint.calls
    signatures = call.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert call.verified_by == (new, old)


async def test_a_subscription_without_secrets_is_not_posted_to(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url(), secrets=[])

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    assert doc["attempts"][-1]["error"] == "WEBHOOK_SECRET_MISSING"
    assert receiver.calls == []


# ---------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------


async def test_an_endpoint_failing_its_first_calls_gets_the_event_later(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url(), retry_schedule=[1, 1])
    receiver.fail_next(2, 503)
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())

    first = await run_next_job(deps)
    retry = await next_job(deps)
    assert retry is not None
    second = await webhook_delivery.deliver(deps, retry[1])
    third = await run_next_job(deps)

    assert (first, second, third) == ("retrying", "retrying", "delivered")
    assert retry[0] == f"{created['id']}:2"
    assert [c.status for c in receiver.calls] == [503, 503, 200]
    assert {c.headers["webhook-id"] for c in receiver.calls} == {an_event()["id"]}
    assert all(c.verified_by == (SECRET,) for c in receiver.calls)
    doc = await delivery(deps, created["id"])
    assert doc["status"] == "delivered" and doc["attempt_count"] == 3
    assert [a["error"] for a in doc["attempts"]] == ["HTTP_503", "HTTP_503", None]
    assert doc["next_attempt_at"] is None


async def test_a_retry_waits_the_scheduled_time_jittered(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())  # default: 5 s first
    receiver.fail_next(1, 500)
    before = deps.clock.now()

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "retrying" and doc["status"] == "pending"
    wait = datetime.fromisoformat(doc["next_attempt_at"]) - before
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6.5)
    assert await next_job(deps, within=0) is None
    assert await jobs_waiting(deps) == 1


async def test_a_spent_schedule_fails_the_delivery(deps: Deps, receiver: WebhookReceiver) -> None:
    subscription = await subscribe(deps, receiver.hook_url(), retry_schedule=[])
    receiver.fail_next(1, 500)

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    assert doc["status"] == "failed" and doc["next_attempt_at"] is None
    assert await jobs_waiting(deps) == 0


@pytest.mark.parametrize("as_date", [False, True])
async def test_retry_after_on_a_429_is_honoured(
    deps: Deps, receiver: WebhookReceiver, as_date: bool
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    now = deps.clock.now()
    value = format_datetime(now + timedelta(seconds=300), usegmt=True) if as_date else "300"
    receiver.fail_next(1, 429, {"Retry-After": value})

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "retrying"
    assert doc["attempts"][0]["error"] == "HTTP_429"
    wait = datetime.fromisoformat(doc["next_attempt_at"]) - now
    assert timedelta(seconds=298) <= wait <= timedelta(seconds=302)
    assert await jobs_waiting(deps) == 1


async def test_a_slow_endpoint_times_out_and_is_retried(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    settings = Settings(OCM_DATA_DIR=tmp_path, OCM_WEBHOOK_TIMEOUT_SECONDS=0.3)
    async with platform(settings) as deps:
        subscription = await subscribe(deps, receiver.hook_url())
        receiver.slow_next(1, 1)

        outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "retrying"
    [attempt] = doc["attempts"]
    assert attempt["error"] == "TIMEOUT" and attempt["status_code"] is None
    assert attempt["latency_ms"] < 2000


async def test_an_unreachable_endpoint_is_retried(deps: Deps) -> None:
    closed = WebhookReceiver()
    with closed.running():
        url = closed.hook_url()  # nothing listens there once it stopped
    subscription = await subscribe(deps, url)

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "retrying"
    assert doc["attempts"][0]["error"] == "CONNECTION_FAILED"


# ---------------------------------------------------------------------------
# Failures that do not retry
# ---------------------------------------------------------------------------


async def test_a_4xx_fails_the_delivery_without_retrying(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    receiver.fail_next(1, 400)

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    [attempt] = doc["attempts"]
    assert attempt["status_code"] == 400 and attempt["error"] == "HTTP_400"
    assert attempt["response"] == "failure of the day"
    assert await jobs_waiting(deps) == 0
    assert (await reread(deps, subscription))["enabled"] is True


async def test_redirects_are_not_followed(deps: Deps, receiver: WebhookReceiver) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    receiver.redirect_next(1, receiver.hook_url("/elsewhere"))

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    assert [c.path for c in receiver.calls] == ["/hook"]
    assert doc["attempts"][0]["error"] == "HTTP_307"
    assert await jobs_waiting(deps) == 0


async def test_a_410_disables_the_subscription(deps: Deps, receiver: WebhookReceiver) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    assert len(await interest.subscriptions(deps, TENANT)) == 1  # cached by the fan-out
    receiver.fail_next(1, 410)

    outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed" and doc["status"] == "failed"
    assert await jobs_waiting(deps) == 0
    after = await reread(deps, subscription)
    assert after["enabled"] is False
    [seen_by_fan_out] = await interest.subscriptions(deps, TENANT)
    assert seen_by_fan_out["enabled"] is False
    assert after["disabled_reason"] == "410 Gone from the endpoint"
    [event] = await platform_events(deps)
    assert event["type"] == "webhook.endpoint.disabled"
    assert event["tenant_id"] == TENANT
    assert event["data"]["webhook_id"] == subscription["id"]
    assert event["data"]["reason"] == "410 Gone from the endpoint"
    EndpointEventData.model_validate(event["data"])  # as documented in /event-types


async def test_a_410_job_redelivered_does_not_announce_the_disabling_twice(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    await webhook_fanout.create_delivery(deps, subscription, an_event())
    job = await next_job(deps)
    assert job is not None
    receiver.fail_next(1, 410)

    first = await webhook_delivery.deliver(deps, job[1])
    again = await webhook_delivery.deliver(deps, job[1])

    assert (first, again) == ("failed", "dropped")
    assert len(receiver.calls) == 1
    assert [e["type"] for e in await platform_events(deps)] == ["webhook.endpoint.disabled"]


async def test_a_disabled_subscription_fails_its_pending_deliveries_unsent(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    await deps.store.patch(WEBHOOKS, TENANT, subscription["id"], {"enabled": False})

    outcome = await run_next_job(deps)

    assert outcome == "dropped"
    doc = await delivery(deps, created["id"])
    assert doc["status"] == "failed" and doc["error"] == "WEBHOOK_DISABLED"
    assert receiver.calls == []


@pytest.fixture
def production(tmp_path: Path) -> Settings:
    return Settings(
        OCM_DATA_DIR=tmp_path,
        OCM_ENV="production",
        OCM_SECRET_KEY=Fernet.generate_key().decode(),
        OCM_ALLOW_PRIVATE_EGRESS=False,
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_loopback_is_refused_when_private_egress_is_not_allowed(
    production: Settings, receiver: WebhookReceiver, host: str
) -> None:
    async with platform(production) as deps:
        subscription = await subscribe(deps, f"https://{host}:{receiver.port}/hook")

        outcome, doc = await deliver_once(deps, subscription)

        assert await jobs_waiting(deps) == 0
    assert outcome == "failed"
    assert doc["attempts"][0]["error"] == "EGRESS_REFUSED"
    assert receiver.calls == []


async def test_production_refuses_plain_http(
    production: Settings, receiver: WebhookReceiver
) -> None:
    async with platform(production) as deps:
        subscription = await subscribe(deps, receiver.hook_url())

        outcome, doc = await deliver_once(deps, subscription)

    assert outcome == "failed"
    assert doc["attempts"][0]["error"] == "WEBHOOK_URL_NOT_HTTPS"
    assert receiver.calls == []


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------


async def test_a_failure_starts_the_failing_period_and_a_success_ends_it(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url(), retry_schedule=[])
    receiver.fail_next(1, 500)

    await deliver_once(deps, subscription, n=1)
    failing = await reread(deps, subscription)
    await deliver_once(deps, subscription, n=2)
    recovered = await reread(deps, subscription)

    assert failing["failing_since"] is not None
    assert recovered["failing_since"] is None and recovered["failing_warned"] is False
    assert await platform_events(deps) == []


@pytest.fixture
def health(tmp_path: Path) -> Settings:
    return Settings(
        OCM_DATA_DIR=tmp_path,
        OCM_EVENTS_LOG_TYPES="*",
        OCM_WEBHOOK_WARN_AFTER_SECONDS=60,
        OCM_WEBHOOK_DISABLE_AFTER_SECONDS=3600,
    )


async def test_an_endpoint_failing_past_the_warning_period_is_warned_once(
    health: Settings, receiver: WebhookReceiver
) -> None:
    async with platform(health) as deps:
        since = to_utc_text(deps.clock.now() - timedelta(seconds=90))
        subscription = await subscribe(deps, receiver.hook_url(), failing_since=since)
        receiver.fail_next(2, 500)

        await deliver_once(deps, subscription, n=1)
        await deliver_once(deps, subscription, n=2)

        after = await reread(deps, subscription)
        events = await platform_events(deps)
    assert after["enabled"] is True and after["failing_warned"] is True
    assert after["failing_since"] == since
    [event] = events
    assert event["type"] == "webhook.endpoint.failing"
    assert event["data"]["webhook_id"] == subscription["id"]
    assert event["data"]["failing_since"] == since
    EndpointEventData.model_validate(event["data"])
    disable_at = to_utc_text(datetime.fromisoformat(since) + timedelta(seconds=3600))
    assert (
        event["data"]["reason"] == f"HTTP_500; disabled at {disable_at} unless a delivery "
        "succeeds before"
    )


async def test_an_endpoint_failing_past_the_disable_period_is_disabled(
    health: Settings, receiver: WebhookReceiver
) -> None:
    async with platform(health) as deps:
        since = to_utc_text(deps.clock.now() - timedelta(hours=2))
        subscription = await subscribe(
            deps, receiver.hook_url(), failing_since=since, failing_warned=True, retry_schedule=[1]
        )
        receiver.fail_next(1, 500)

        outcome, _ = await deliver_once(deps, subscription)
        after = await reread(deps, subscription)
        events = await platform_events(deps)
        retry = await run_next_job(deps, within=3)  # the scheduled retry finds it disabled

    assert outcome == "retrying"
    assert after["enabled"] is False
    assert after["disabled_reason"] == f"failing since {since}"
    assert [e["type"] for e in events] == ["webhook.endpoint.disabled"]
    assert retry == "dropped" and len(receiver.calls) == 1


# ---------------------------------------------------------------------------
# At-least-once: repeated and redelivered jobs
# ---------------------------------------------------------------------------


async def test_a_repeated_job_does_not_post_again_after_a_success(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    job = await next_job(deps)
    assert job is not None

    first = await webhook_delivery.deliver(deps, job[1])
    again = await webhook_delivery.deliver(deps, job[1])

    assert (first, again) == ("delivered", "dropped")
    assert len(receiver.calls) == 1
    assert (await delivery(deps, created["id"]))["attempt_count"] == 1


async def test_a_stale_job_is_dropped(deps: Deps, receiver: WebhookReceiver) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    stale = {"tenant_id": TENANT, "delivery_id": created["id"], "attempt": 3}

    assert await webhook_delivery.deliver(deps, orjson.dumps(stale)) == "dropped"
    assert receiver.calls == []


async def test_a_job_redelivered_after_its_attempt_was_recorded_enqueues_the_retry_unsent(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    job = await next_job(deps)
    assert job is not None
    # As a crash would leave it: the failed attempt written, its retry not enqueued.
    attempt = {"at": to_utc_text(deps.clock.now()), "status_code": 500, "latency_ms": 3}
    await deps.store.patch(
        WEBHOOK_DELIVERIES,
        TENANT,
        created["id"],
        {
            "attempt_count": 1,
            "attempts": [{**attempt, "response": "", "error": "HTTP_500"}],
            "next_attempt_at": to_utc_text(deps.clock.now()),
        },
    )

    outcome = await webhook_delivery.deliver(deps, job[1])
    retry = await next_job(deps, within=1)

    assert outcome == "dropped"
    assert receiver.calls == []
    assert retry is not None and retry[0] == f"{created['id']}:2"
    assert (await reread(deps, subscription))["failing_since"] is not None


async def test_the_attempts_kept_are_capped(deps: Deps, receiver: WebhookReceiver) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    await next_job(deps)
    old = [{"at": "2026-01-01T00:00:00.000Z", "status_code": 500, "error": "HTTP_500"}] * 50
    await deps.store.patch(
        WEBHOOK_DELIVERIES, TENANT, created["id"], {"attempt_count": 50, "attempts": old}
    )
    job = {"tenant_id": TENANT, "delivery_id": created["id"], "attempt": 51}

    assert await webhook_delivery.deliver(deps, orjson.dumps(job)) == "delivered"
    doc = await delivery(deps, created["id"])
    assert len(doc["attempts"]) == 50 and doc["attempts"][-1]["status_code"] == 200
    assert doc["attempt_count"] == 51


async def test_the_response_kept_is_its_first_kib(deps: Deps, receiver: WebhookReceiver) -> None:
    receiver.answer_next(1, Answer(200, body="é".encode() * 3000))
    subscription = await subscribe(deps, receiver.hook_url())

    _, doc = await deliver_once(deps, subscription)

    response = doc["attempts"][0]["response"]
    assert response.encode() == "é".encode() * 512


async def test_a_dead_lettered_job_fails_its_pending_delivery(
    deps: Deps, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(deps, receiver.hook_url())
    created = await webhook_fanout.create_delivery(deps, subscription, an_event())
    job = await next_job(deps)
    assert job is not None

    first = await webhook_delivery.fail_dead_lettered(deps, job[1], "MaxDeliveryCountExceeded")
    again = await webhook_delivery.fail_dead_lettered(deps, job[1], "MaxDeliveryCountExceeded")

    assert (first, again) == ("failed", "settled")
    doc = await delivery(deps, created["id"])
    assert doc["status"] == "failed" and doc["error"] == "DEAD_LETTERED"
    assert await webhook_delivery.deliver(deps, job[1]) == "dropped"
    assert receiver.calls == []


async def test_unreadable_and_orphan_jobs_are_dropped(deps: Deps) -> None:
    orphan = {"tenant_id": TENANT, "delivery_id": "whd_gone", "attempt": 1}
    assert await webhook_delivery.deliver(deps, b"{not json") == "unreadable"
    assert await webhook_delivery.deliver(deps, orjson.dumps(orphan)) == "missing"
