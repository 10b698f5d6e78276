"""The reconciliation timer as an operator relies on it: it recounts each hour once
the hour is closed, catches up what it missed, never twice, restores what lost
events left out (and a late event of a repaired hour is not counted again), and
the API shows the repaired counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.domain.facts import facts_of
from shared.services.analytics import consumer, metrics, outcomes, reconcile
from shared.services.deps import Deps
from shared.services.events import facts_out
from shared.services.onboarding import signup
from tests.fakes import FakeClock

START = datetime(2030, 3, 1, 9, 20, tzinfo=UTC)
PHONE = {"type": "phone", "address": "+4791234567"}


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    settings = Settings(OCM_DATA_DIR=tmp_path, OCM_RATE_LIMIT_PER_SECOND=0)
    embedded = bootstrap.build(settings)
    clock = FakeClock(START)
    built = bootstrap.platform(settings, embedded.store, embedded.queue, embedded.secrets, clock)
    yield built
    await bootstrap.close(embedded)


async def drain(deps: Deps, subscription: str) -> list[bytes]:
    entity = f"{deps.settings.OCM_EVENTS_TOPIC}/subscriptions/{subscription}"
    bodies = []
    while batch := await deps.queue.receive(entity, max_messages=100):
        for msg in batch:
            bodies.append(msg.body)
            await deps.queue.complete(entity, msg)
    return bodies


async def accepted_count(api: httpx.AsyncClient, key: dict[str, str]) -> int:
    answer = await api.get(
        "/api/v1/analytics/messages",
        params={"from": "2030-03-01T00:00:00Z", "to": "2030-03-02T00:00:00Z", "interval": "day"},
        headers=key,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["series"][0]["totals"]["accepted"])


async def test_closed_hours_are_recounted_once_and_lost_events_restored(deps: Deps) -> None:
    assert isinstance(deps.clock, FakeClock)
    tenant = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": tenant.api_key}
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as api:
        made = await api.post(
            "/api/v1/channels", json={"name": "s", "type": "sandbox"}, headers=key
        )
        assert made.status_code == 201
        body = {"channel": "s", "receiver": PHONE, "content": {"type": "text", "text": "x"}}
        for _ in range(3):
            assert (await api.post("/api/v1/messages", json=body, headers=key)).status_code == 202
        assert await facts_out.flush(deps) == 3  # gathered in one topic message
        (gathered,) = await drain(deps, deps.settings.OCM_ANALYTICS_SUBSCRIPTION)
        events = [orjson.dumps(e) for e in facts_out.events_of(orjson.loads(gathered))]
        assert len(events) == 3
        await consumer.count(deps, events[:1])  # two events lost on the way
        assert await accepted_count(api, key) == 1
        early = await api.get("/api/v1/analytics/outcomes", headers=key)
        assert early.json()["unreconciled"] == ["2030-03-01T09"]

        # The hour is not closed yet: nothing is recounted.
        deps.clock.set(START.replace(minute=59))
        assert await reconcile.run(deps) == reconcile.Reconciled(1, 0, 0)  # the hour before
        assert await accepted_count(api, key) == 1

        deps.clock.set(START + timedelta(hours=1))  # 10:20: 09:00-10:00 closed 20 min ago
        assert await reconcile.run(deps) == reconcile.Reconciled(1, 1, 2)
        assert await accepted_count(api, key) == 3
        found = await api.get(
            "/api/v1/analytics/outcomes",
            params={"from": "2030-03-01T00:00:00Z", "to": "2030-03-02T00:00:00Z"},
            headers=key,
        )
        assert found.status_code == 200, found.text
        (line,) = found.json()["series"]
        assert line["totals"] == {**dict.fromkeys(outcomes.COHORT, 0), "accepted": 3, "pending": 3}
        assert found.json()["unreconciled"] == []
        assert await reconcile.run(deps) == reconcile.Reconciled(0, 0, 0)  # never twice

        # A lost event that turns up after the repair is not counted again.
        late = await consumer.count(deps, events[1:])
        assert (late.counted, late.duplicates) == (0, 2)
        assert await accepted_count(api, key) == 3

        deps.clock.set(START + timedelta(hours=4))  # three more hours closed, none busy
        assert await reconcile.run(deps) == reconcile.Reconciled(3, 0, 0)
    drift = [
        b for b in await drain(deps, deps.settings.OCM_EVENTS_LOG_SUBSCRIPTION) if b"drift" in b
    ]
    assert len(drift) == 1


async def test_the_counted_facts_are_exported_as_opentelemetry_counters(deps: Deps) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("ocm")
    doc = {
        "id": "msg_1",
        "tenant_id": "tn_1",
        "direction": "outbound",
        "channel": "s",
        "channel_type": "sms",
        "provider": "twilio",
        "created_at": "2030-03-01T09:00:00.000Z",
        "events": [
            {"id": "e0", "type": "message.queued", "at": "2030-03-01T09:00:00.000Z"},
            {"id": "e1", "type": "message.sent", "at": "2030-03-01T09:00:01.000Z"},
        ],
    }
    metrics.record(facts_of(doc), meter=meter)
    data = reader.get_metrics_data()
    assert data is not None
    found = {
        (m.name, p.attributes["ocm.status"], p.attributes["ocm.provider"], p.value)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }
    assert found == {
        ("ocm.messages.accepted", "accepted", "twilio", 1),
        ("ocm.messages.sent", "sent", "twilio", 1),
    }
