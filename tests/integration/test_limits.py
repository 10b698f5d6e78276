"""Rate limits per application and message quotas per tenant: refused with 429 and a
clear problem, configurable per tenant, and holding across instances."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import OcmError
from shared.services.deps import Deps
from shared.services.identity import limits, rates, tenants
from shared.services.onboarding import signup
from tests.fakes import FakeClock, FakeDocumentStore
from tests.unit.conftest import SETTINGS

SEND = {
    "channel": "sandbox",
    "receiver": {"type": "phone", "address": "+4791234567"},
    "content": {"type": "text", "text": "hi"},
    "send_at": "2099-01-01T00:00:00Z",
}


async def tenant(api: httpx.AsyncClient, deps: Deps) -> tuple[str, dict[str, str]]:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    await api.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key)
    return created.tenant["id"], key


async def test_an_app_over_its_rate_gets_429_with_retry_after(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    tenant_id, key = await tenant(api, deps)
    other = (
        await api.post("/api/v1/apps", json={"name": "b", "scopes": ["read:channel"]}, headers=key)
    ).json()["api_key"]
    await tenants.set_limits(deps, tenant_id, {"requests_per_second": 2, "burst": 4})
    answers = [await api.get("/api/v1/channels", headers=key) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "RATE_LIMITED"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert (
        refused.headers["ratelimit-limit"] == "2" and refused.headers["ratelimit-remaining"] == "0"
    )
    # Another application of the tenant has a bucket of its own.
    assert (await api.get("/api/v1/channels", headers={"X-API-Key": other})).status_code == 200
    await asyncio.sleep(1.05)  # tokens come back (two a second), and a new second starts
    assert (await api.get("/api/v1/channels", headers=key)).status_code == 200
    await tenants.set_limits(deps, tenant_id, {"requests_per_second": None, "burst": None})
    deps.rate_buckets.clear()
    statuses = [(await api.get("/api/v1/channels", headers=key)).status_code for _ in range(20)]
    assert set(statuses) == {200}  # back to the platform's 100 a second


async def test_the_fleet_shares_one_limit_within_the_documented_overshoot() -> None:
    """Two instances (their own buckets, one store): together they admit about
    rate + burst a second, not twice that."""
    clock = FakeClock()
    store = FakeDocumentStore(clock=clock)

    def instance() -> Deps:
        return Deps(
            settings=SETTINGS,
            store=store,
            queue=None,
            secrets=None,
            clock=clock,
            senders={},  # type: ignore[arg-type]
        )

    one, two = instance(), instance()
    rules = {
        "requests_per_second": 10.0,
        "burst": 100.0,
        "messages_per_day": 0,
        "messages_per_month": 0,
    }
    admitted = 0
    for _ in range(100):
        for deps in (one, two):
            try:
                await rates.take(deps, "tn_a", "app_a", rules)
                admitted += 1
            except OcmError:
                pass
    overshoot = 2 * (rates.FLUSH_EVERY - 1)
    assert 110 <= admitted <= 110 + overshoot  # alone, each would have admitted 100


async def test_a_quota_refuses_what_would_exceed_it_and_keeps_nothing_of_it(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    tenant_id, key = await tenant(api, deps)
    await tenants.set_limits(deps, tenant_id, {"messages_per_day": 3})
    for _ in range(2):
        assert (await api.post("/api/v1/messages", json=SEND, headers=key)).status_code == 202
    batch = await api.post("/api/v1/messages/batch", json={"messages": [SEND, SEND]}, headers=key)
    assert batch.status_code == 429 and batch.json()["code"] == "QUOTA_EXCEEDED"
    assert int(batch.headers["retry-after"]) >= 1
    listed = (await api.get("/api/v1/messages", headers=key)).json()["items"]
    assert len(listed) == 2  # nothing of the refused batch was stored
    assert (await api.post("/api/v1/messages", json=SEND, headers=key)).status_code == 202
    over = await api.post("/api/v1/messages", json=SEND, headers=key)
    assert over.status_code == 429 and "3 messages a day" in over.json()["detail"]


async def test_a_monthly_quota_holds_across_instances(tmp_path: Path) -> None:
    """Two platforms on one database count against one quota."""
    settings = Settings(OCM_DATA_DIR=tmp_path, OCM_QUOTA_MESSAGES_PER_MONTH=5)
    first, second = bootstrap.build(settings), bootstrap.build(settings)
    try:
        created = await signup.create_tenant(first, "acme")
        tenant_id = created.tenant["id"]
        accepted = 0
        for deps in (first, second, first, second, first, second, first):
            try:
                await limits.reserve_messages(
                    deps, await tenants.cached(deps, tenant_id), tenant_id, 1
                )
                accepted += 1
            except OcmError as exc:
                assert exc.code == "QUOTA_EXCEEDED"
            await first.flush()
            await second.flush()
        assert accepted == 5
    finally:
        for deps in (first, second):
            for closer in deps.closers:
                closer()


async def _app_key(api: httpx.AsyncClient, key: dict[str, str], name: str) -> dict[str, str]:
    body = {"name": name, "scopes": ["read:channel", "send:message"]}
    created = await api.post("/api/v1/apps", json=body, headers=key)
    return {"X-API-Key": created.json()["api_key"]}


async def test_more_applications_do_not_multiply_a_tenants_rate(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 10: three apps of one tenant, 250 requests each, all got
    200; each app had a bucket of its own and the tenant none."""
    tenant_id, key = await tenant(api, deps)
    apps = [await _app_key(api, key, f"app-{n}") for n in range(3)]
    await tenants.set_limits(deps, tenant_id, {"tenant_requests_per_second": 1, "tenant_burst": 6})
    deps.rate_buckets.clear()  # the set-up's requests were of this second too
    statuses = [
        (await api.get("/api/v1/channels", headers=app)).status_code
        for app in apps
        for _ in range(3)
    ]
    assert statuses.count(200) == 6 and statuses.count(429) == 3
    refused = await api.get("/api/v1/channels", headers=apps[0])
    assert "This tenant is over its rate limit" in refused.json()["detail"]


async def test_a_parent_may_count_its_childrens_requests_against_its_own_ceiling(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    parent_id, key = await tenant(api, deps)
    child = await api.post("/api/v1/tenants", json={"name": "kid"}, headers=key)
    child_key = {"X-API-Key": child.json()["api_key"]}
    await tenants.set_limits(
        deps, parent_id, {"tenant_requests_per_second": 1, "tenant_burst": 3, "children_count": 1}
    )
    await tenants.set_limits(
        deps, child.json()["tenant_id"], {"tenant_requests_per_second": 100, "tenant_burst": 100}
    )
    deps.rate_buckets.clear()
    statuses = [
        (await api.get("/api/v1/channels", headers=child_key)).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]  # the parent's 3, though the child has 100
    await tenants.set_limits(deps, parent_id, {"children_count": None})
    deps.rate_buckets.clear()
    statuses = [
        (await api.get("/api/v1/channels", headers=child_key)).status_code for _ in range(4)
    ]
    assert set(statuses) == {200}


async def test_a_batch_counts_its_messages_against_the_message_rate(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 10: a batch of 1000 counted as one request."""
    tenant_id, key = await tenant(api, deps)
    await tenants.set_limits(deps, tenant_id, {"messages_per_second": 1, "message_burst": 1000})
    batch = {"messages": [SEND] * 600}
    first = await api.post("/api/v1/messages/batch", json=batch, headers=key)
    assert first.status_code == 202, first.text
    second = await api.post("/api/v1/messages/batch", json=batch, headers=key)
    assert second.status_code == 429
    assert "over its message rate limit" in second.json()["detail"]
    listed = await api.get("/api/v1/messages", params={"limit": 200}, headers=key)
    assert len(listed.json()["items"]) == 200  # the refused batch stored nothing


async def test_a_parent_that_counts_its_children_counts_their_messages_too(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    parent_id, key = await tenant(api, deps)
    child = (await api.post("/api/v1/tenants", json={"name": "kid"}, headers=key)).json()
    child_key = {"X-API-Key": child["api_key"]}
    await api.post(
        "/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=child_key
    )
    await tenants.set_limits(
        deps, parent_id, {"messages_per_second": 1, "message_burst": 50, "children_count": 1}
    )
    await tenants.set_limits(
        deps, child["tenant_id"], {"messages_per_second": 1000, "message_burst": 1000}
    )
    batch = {"messages": [SEND] * 40}
    first = await api.post("/api/v1/messages/batch", json=batch, headers=child_key)
    assert first.status_code == 202, first.text
    second = await api.post("/api/v1/messages/batch", json=batch, headers=child_key)
    assert second.status_code == 429
    assert "parent (counting its children) is over its message rate" in second.json()["detail"]


def test_busier_buckets_add_to_the_fleets_count_less_often() -> None:
    """The write per FLUSH_EVERY units is the floor; a bucket of 1000 a second and
    bursts of 5000 writes every 60 (1 % of 6000), so the allowance stays 1 %."""
    assert rates.flush_every(10, 20) == rates.FLUSH_EVERY
    assert rates.flush_every(1000, 5000) == 60
