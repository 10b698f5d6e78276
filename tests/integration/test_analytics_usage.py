"""Usage thresholds as a tenant sets them: reaching one announces it once per
period, as a `usage.threshold_reached` event on the events topic (where webhooks
take it), and a bad threshold is a 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.services.analytics import consumer, thresholds
from shared.services.deps import Deps
from shared.services.events import facts_out
from shared.services.onboarding import signup

PHONE = {"type": "phone", "address": "+4791234567"}


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    # Every event type reaches the log subscription, where this test reads them.
    built = bootstrap.build(
        Settings(OCM_DATA_DIR=tmp_path, OCM_EVENTS_LOG_TYPES="*", OCM_RATE_LIMIT_PER_SECOND=0)
    )
    yield built
    await bootstrap.close(built)


async def drain(deps: Deps, subscription: str) -> list[dict]:
    entity = f"{deps.settings.OCM_EVENTS_TOPIC}/subscriptions/{subscription}"
    found = []
    while batch := await deps.queue.receive(entity, max_messages=100):
        for msg in batch:
            found.append(orjson.loads(msg.body))
            await deps.queue.complete(entity, msg)
    return found


async def test_a_threshold_reached_is_announced_once_per_period(deps: Deps) -> None:
    tenant = await signup.create_tenant(deps, "metered")
    key = {"X-API-Key": tenant.api_key}
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as api:
        await api.post("/api/v1/channels", json={"name": "s", "type": "sandbox"}, headers=key)
        wanted = {"thresholds": [{"metric": "accepted", "period": "day", "limit": 3}]}
        answer = await api.put("/api/v1/analytics/thresholds", json=wanted, headers=key)
        assert answer.status_code == 200, answer.text
        assert (await api.get("/api/v1/analytics/thresholds", headers=key)).json() == wanted
        bad = {"thresholds": [{"metric": "accepted", "period": "week", "limit": 3}]}
        refused = await api.put("/api/v1/analytics/thresholds", json=bad, headers=key)
        assert refused.status_code == 422
        body = {"channel": "s", "receiver": PHONE, "content": {"type": "text", "text": "x"}}

        async def send_and_count(n: int) -> None:
            for _ in range(n):
                assert (
                    await api.post("/api/v1/messages", json=body, headers=key)
                ).status_code == 202
            await facts_out.flush(deps)
            gathered = await drain(deps, deps.settings.OCM_ANALYTICS_SUBSCRIPTION)
            deps.buffers.pop("thresholds_checked", None)  # as if CHECK_EVERY had passed
            await consumer.count(deps, [orjson.dumps(e) for e in gathered])

        await send_and_count(2)
        log = deps.settings.OCM_EVENTS_LOG_SUBSCRIPTION
        assert [e for e in await drain(deps, log) if e["type"] == "usage.threshold_reached"] == []
        await send_and_count(2)
        reached = [e for e in await drain(deps, log) if e["type"] == "usage.threshold_reached"]
        assert len(reached) == 1
        assert reached[0]["tenant_id"] == tenant.tenant["id"]
        data = reached[0]["data"]
        assert (data["metric"], data["period"], data["limit"], data["value"]) == (
            "accepted",
            "day",
            3,
            4,
        )
        await send_and_count(2)  # past it: not announced again this day
        assert [e for e in await drain(deps, log) if e["type"] == "usage.threshold_reached"] == []
    assert thresholds.period_start(deps.clock.now(), "month").day == 1


async def test_cost_is_the_models_price_per_accepted_message_and_a_spend_threshold_fires(
    deps: Deps,
) -> None:
    from shared.services.analytics import query

    tenant = await signup.create_tenant(deps, "spender")
    key = {"X-API-Key": tenant.api_key}
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as api:
        await api.post("/api/v1/channels", json={"name": "s", "type": "sandbox"}, headers=key)
        limit = {"metric": "cost_usd", "period": "month", "limit": 0.00005}
        await api.put("/api/v1/analytics/thresholds", json={"thresholds": [limit]}, headers=key)
        body = {"channel": "s", "receiver": PHONE, "content": {"type": "text", "text": "x"}}
        for _ in range(3):
            assert (await api.post("/api/v1/messages", json=body, headers=key)).status_code == 202
        await facts_out.flush(deps)
        gathered = await drain(deps, deps.settings.OCM_ANALYTICS_SUBSCRIPTION)
        await consumer.count(deps, [orjson.dumps(e) for e in gathered])
        found = await api.get(
            "/api/v1/analytics/messages",
            params={"metrics": "cost_usd", "interval": "day"},
            headers=key,
        )
        (line,) = found.json()["series"]
        assert line["totals"] == {"cost_usd": round(3 * 17.55 / 1e6, 6)}
        grouped = await query.messages(
            deps,
            tenant.tenant["id"],
            start=None,
            end=None,
            group_by="channel",
            metrics="accepted,cost_usd",
        )
        assert grouped["series"][0]["totals"]["accepted"] == 3
    reached = [
        e
        for e in await drain(deps, deps.settings.OCM_EVENTS_LOG_SUBSCRIPTION)
        if e["type"] == "usage.threshold_reached"
    ]
    assert [(e["data"]["metric"], e["data"]["period"]) for e in reached] == [("cost_usd", "month")]
