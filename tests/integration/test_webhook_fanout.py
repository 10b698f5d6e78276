"""The fan-out and what surrounds it: events go only to their own tenant's webhooks,
a redelivered event makes one delivery, a manual retry after a delivery that never
got to send goes out, endpoint events survive a failed publish, host names no DNS
can hold are refused, and a replay too large is refused before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.containers import EVENTS, WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.ports import Filter, OutgoingMessage, Query
from shared.services.deps import Deps
from shared.services.events import interest
from shared.services.onboarding import signup
from shared.services.webhooks import deliverer as webhook_delivery
from shared.services.webhooks import deliveries as webhook_deliveries
from shared.services.webhooks import fanout as webhook_fanout
from tests.peers.webhook_receiver import WebhookReceiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(OCM_DATA_DIR=tmp_path, OCM_EVENTS_LOG_TYPES="*", OCM_LOOKUP_CACHE_SECONDS=0)


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    built = bootstrap.build(settings)
    yield built
    await bootstrap.close(built)


@pytest.fixture
async def api(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().running() as peer:
        yield peer  # type: ignore[misc]


async def tenant(deps: Deps, name: str) -> tuple[str, dict[str, str]]:
    created = await signup.create_tenant(deps, name)
    return created.tenant["id"], {"X-API-Key": created.api_key}


async def subscribe(
    api: httpx.AsyncClient, key: dict[str, str], url: str, **body: Any
) -> dict[str, Any]:
    answer = await api.post(
        "/api/v1/webhooks", json={"url": url, "events": ["*"], **body}, headers=key
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def event(tenant_id: str, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"evt_fanout_{n}",
        "type": "message.delivered",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "tenant_id": tenant_id,
        "data": {"message_id": f"msg_{n}", "channel": "sms", "direction": "outbound"},
    }


async def deliveries(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    hooks = await interest.subscriptions(deps, tenant_id)
    found = []
    for hook in hooks:
        page = await deps.store.query(
            WEBHOOK_DELIVERIES,
            Query(scope=tenant_id, where=(Filter("webhook_id", "eq", hook["id"]),), limit=100),
        )
        found += page.items
    return found


async def jobs(deps: Deps) -> list[bytes]:
    received = await deps.queue.receive(deps.settings.OCM_WEBHOOK_QUEUE, max_messages=100)
    for message in received:
        await deps.queue.abandon(deps.settings.OCM_WEBHOOK_QUEUE, message)
    return [m.body for m in received]


async def test_an_event_reaches_only_its_own_tenants_webhooks(api, deps, receiver) -> None:
    a, key_a = await tenant(deps, "a")
    b, key_b = await tenant(deps, "b")
    await subscribe(api, key_a, receiver.hook_url("/a"))
    await subscribe(api, key_b, receiver.hook_url("/b"))
    await webhook_fanout.fan_out(deps, orjson.dumps(event(a)))
    assert len(await deliveries(deps, a)) == 1
    assert await deliveries(deps, b) == []
    assert await deps.store.read(EVENTS, a, "evt_fanout_1") is not None
    assert await deps.store.read(EVENTS, b, "evt_fanout_1") is None
    [job] = await jobs(deps)
    assert orjson.loads(job)["tenant_id"] == a


async def test_a_redelivered_event_makes_one_delivery_and_one_call(api, deps, receiver) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(api, key, receiver.hook_url())
    receiver.secrets.append(hook["secret"])
    body = orjson.dumps(event(a))
    await webhook_fanout.fan_out(deps, body)
    await webhook_fanout.fan_out(deps, body)  # the topic delivered it twice
    assert len(await deliveries(deps, a)) == 1
    pending = await jobs(deps)
    assert len(pending) == 1
    assert await webhook_delivery.deliver(deps, pending[0]) == "delivered"
    assert len(receiver.calls) == 1 and receiver.calls[0].verified_by


async def test_a_retry_of_a_delivery_that_never_got_to_send_goes_out(api, deps, receiver) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(api, key, receiver.hook_url())
    receiver.secrets.append(hook["secret"])
    hook_id = hook["webhook"]["id"]
    await webhook_fanout.fan_out(deps, orjson.dumps(event(a)))
    patched = await api.patch(f"/api/v1/webhooks/{hook_id}", json={"enabled": False}, headers=key)
    assert patched.status_code == 200
    [first] = await jobs(deps)
    assert await webhook_delivery.deliver(deps, first) == "dropped"  # disabled: nothing sent
    [failed] = await deliveries(deps, a)
    assert failed["status"] == "failed" and failed["error"] == "WEBHOOK_DISABLED"
    await api.patch(f"/api/v1/webhooks/{hook_id}", json={"enabled": True}, headers=key)
    await deps.queue.complete(
        deps.settings.OCM_WEBHOOK_QUEUE,
        (await deps.queue.receive(deps.settings.OCM_WEBHOOK_QUEUE))[0],
    )
    retried = await api.post(
        f"/api/v1/webhooks/{hook_id}/deliveries/{failed['id']}/retry", headers=key
    )
    assert retried.status_code == 202, retried.text
    [again] = await jobs(deps)  # a job of its own: the first one's id is spent
    assert await webhook_delivery.deliver(deps, again) == "delivered"
    assert len(receiver.calls) == 1


async def test_custom_headers_reach_the_endpoint_and_a_patch_changes_them(
    api, deps, receiver
) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(
        api, key, receiver.hook_url(), headers={"Authorization": "Bearer first-t0ken"}
    )
    receiver.secrets.append(hook["secret"])
    hook_id = hook["webhook"]["id"]

    async def deliver_event(n: int) -> dict[str, str]:
        await webhook_fanout.fan_out(deps, orjson.dumps(event(a, n)))
        [job] = await jobs(deps)
        assert await webhook_delivery.deliver(deps, job) == "delivered"
        await deps.queue.complete(
            deps.settings.OCM_WEBHOOK_QUEUE,
            (await deps.queue.receive(deps.settings.OCM_WEBHOOK_QUEUE))[0],
        )
        return receiver.calls[-1].headers

    first = await deliver_event(1)
    assert first["authorization"] == "Bearer first-t0ken"
    stored = await deps.store.read(WEBHOOKS, a, hook_id)
    assert b"first-t0ken" not in orjson.dumps(stored)
    cached = await interest.subscriptions(deps, a)  # what the fan-out keeps
    assert b"t0ken" not in orjson.dumps(cached)

    patched = await api.patch(
        f"/api/v1/webhooks/{hook_id}", json={"headers": {"X-Api-Key": "second"}}, headers=key
    )
    assert patched.status_code == 200 and patched.json()["header_names"] == ["X-Api-Key"]
    second = await deliver_event(2)
    assert second["x-api-key"] == "second" and "authorization" not in second
    assert b"second" not in orjson.dumps(await deps.store.read(WEBHOOKS, a, hook_id))

    await api.patch(f"/api/v1/webhooks/{hook_id}", json={"headers": {}}, headers=key)
    third = await deliver_event(3)
    assert "x-api-key" not in third and "authorization" not in third
    assert all(c.verified_by for c in receiver.calls)


class _TopicDownOnce:
    """The platform's queue, whose first send to the events topic fails."""

    def __init__(self, inner: Any, topic: str) -> None:
        self.inner, self.topic, self.failed = inner, topic, False

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        if entity == self.topic and not self.failed:
            self.failed = True
            raise ConnectionError("the topic is briefly unreachable")
        await self.inner.send(entity, messages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_an_endpoint_event_survives_a_failed_publish(api, deps, receiver) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(api, key, receiver.hook_url())
    receiver.secrets.append(hook["secret"])
    await webhook_fanout.fan_out(deps, orjson.dumps(event(a)))
    [job] = await jobs(deps)
    receiver.fail_next(1, 410)
    real = deps.queue
    deps.queue = _TopicDownOnce(real, deps.settings.OCM_EVENTS_TOPIC)  # type: ignore[assignment]
    with pytest.raises(ConnectionError):
        await webhook_delivery.deliver(deps, job)
    deps.queue = real
    assert await webhook_delivery.deliver(deps, job) == "dropped"  # the redelivery
    settings = deps.settings
    log = f"{settings.OCM_EVENTS_TOPIC}/subscriptions/{settings.OCM_EVENTS_LOG_SUBSCRIPTION}"
    published = [orjson.loads(m.body) for m in await deps.queue.receive(log, max_messages=50)]
    assert [e["type"] for e in published] == ["webhook.endpoint.disabled"]
    stored = await deps.store.read(WEBHOOKS, a, hook["webhook"]["id"])
    assert stored is not None and stored["pending_events"] == []


@pytest.mark.parametrize("host", ["a..b", "x" * 70 + ".com", "xn--"])
async def test_a_host_name_no_dns_can_hold_is_refused(api, deps, host: str) -> None:
    _, key = await tenant(deps, "a")
    answer = await api.post(
        "/api/v1/webhooks", json={"url": f"https://{host}/hook", "events": ["*"]}, headers=key
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "WEBHOOK_URL_INVALID"


async def test_a_replay_too_large_is_refused_before_anything_is_sent(
    api, deps, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(api, key, receiver.hook_url())
    now = deps.clock.now()
    for n in range(5):
        await deps.store.create(
            EVENTS, {**event(a, n), "id": new_id("evt"), "timestamp": to_utc_text(now), "ttl": 600}
        )
    monkeypatch.setattr(webhook_deliveries, "REPLAY_MAX", 3)
    window = {"since": to_utc_text(now), "until": to_utc_text(now + timedelta(hours=1))}
    answer = await api.post(
        f"/api/v1/webhooks/{hook['webhook']['id']}/replay", json=window, headers=key
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "REPLAY_WINDOW_TOO_LARGE"
    assert await jobs(deps) == []


async def test_a_stale_redelivered_job_does_not_reopen_a_healed_endpoints_failure(
    api, deps, receiver
) -> None:
    a, key = await tenant(deps, "a")
    hook = await subscribe(api, key, receiver.hook_url(), retry_schedule=[3600])
    receiver.secrets.append(hook["secret"])
    await webhook_fanout.fan_out(deps, orjson.dumps(event(a, 1)))
    [old] = await jobs(deps)
    receiver.fail_next(1, 500)
    assert await webhook_delivery.deliver(deps, old) == "retrying"
    stored = await deps.store.read(WEBHOOKS, a, hook["webhook"]["id"])
    assert stored is not None and stored["failing_since"]
    await deps.queue.complete(
        deps.settings.OCM_WEBHOOK_QUEUE,
        (await deps.queue.receive(deps.settings.OCM_WEBHOOK_QUEUE))[0],
    )
    await webhook_fanout.fan_out(deps, orjson.dumps(event(a, 2)))
    [fresh] = await jobs(deps)
    assert await webhook_delivery.deliver(deps, fresh) == "delivered"  # the endpoint healed
    assert await webhook_delivery.deliver(deps, old) == "dropped"  # the queue redelivers
    healed = await deps.store.read(WEBHOOKS, a, hook["webhook"]["id"])
    assert healed is not None and healed["failing_since"] is None
