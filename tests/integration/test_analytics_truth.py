"""Ground truth under faults, on both backends: thousands of sandbox messages of known
outcomes over 3 tenants and 5 channels go through the API and the app's own
triggers; then every event of the analytics subscription is counted with each
delivered 1-3 times, in random order, by a consumer that crashes ≥20 times, and all
of it once more from the beginning. Every hour bucket must equal the counts
recomputed from the message store (0 differences), the reconciliation must find no
drift, and it must repair a bucket damaged on purpose and say so."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import function_app
from ocm_cli.local_runtime import LocalRuntime
from shared import bootstrap
from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client, create_containers
from shared.api.app import create_app
from shared.config import Settings
from shared.containers import CONTAINERS, MESSAGES, ROLLUPS
from shared.domain.facts import facts_of
from shared.domain.models import Document
from shared.ports import Filter, Query, Write
from shared.services.analytics import consumer, reconcile, rollup
from shared.services.deps import Deps
from shared.services.events import facts_out
from shared.services.onboarding import signup
from tests.support import cosmos
from tests.support.cosmos import CosmosServer

MESSAGES_PER_BACKEND = {
    "embedded": int(os.environ.get("OCM_TRUTH_MESSAGES", "5000")),
    "cosmos": int(os.environ.get("OCM_TRUTH_COSMOS_MESSAGES", "600")),
}
"""The issue asks 5,000 on both; the local Cosmos server takes ~N s per 100 messages,
so `make test` runs fewer there and `make reliability` (or the variable) all of them."""
DONE = {"delivered", "read", "failed", "expired", "cancelled", "received"}
CHANNELS = [f"c{i}" for i in range(1, 6)]
SETTINGS = {
    "OCM_RATE_LIMIT_PER_SECOND": 0,
    "OCM_ALLOW_PRIVATE_EGRESS": True,
    "OCM_RETRY_BASE_SECONDS": 0.2,
    "OCM_RETRY_MAX_SECONDS": 0.5,
}


class Crash(Exception):
    """The consumer's process dies inside a transaction, before its commit."""


class CrashingStore:
    """The store as a dying consumer sees it: one transaction in ``one_in`` never
    lands (the first partition of a batch may have committed: a crash between
    partitions)."""

    def __init__(self, store: Any, rng: random.Random, one_in: int) -> None:
        self._store, self._rng, self._one_in = store, rng, one_in
        self.crashes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        if self._rng.randrange(self._one_in) == 0:
            self.crashes += 1
            raise Crash()
        return list(await self._store.transact(container, writes))


@pytest.fixture(scope="module")
def cosmos_server() -> Iterator[CosmosServer]:
    with cosmos.running() as running:
        yield running


@pytest.fixture(params=["embedded", "cosmos"])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deps]:
    settings = Settings(OCM_DATA_DIR=tmp_path, **SETTINGS)  # type: ignore[arg-type]
    embedded = bootstrap.build(settings)
    if request.param == "embedded":
        bootstrap.set_deps(embedded)
        yield embedded
        bootstrap.set_deps(None)
        await bootstrap.close(embedded)
        return
    server: CosmosServer = request.getfixturevalue("cosmos_server")
    name = f"t{uuid.uuid4().hex[:12]}"
    client = build_cosmos_client(server.endpoint, server.key)
    await client.__aenter__()
    database = await client.create_database_if_not_exists(name)
    await create_containers(database, CONTAINERS)
    store = CosmosDocumentStore(database, CONTAINERS, client=client)
    built = bootstrap.platform(settings, store, embedded.queue, embedded.secrets, embedded.clock)
    bootstrap.set_deps(built)
    yield built
    bootstrap.set_deps(None)
    await built.webhook_http.close()
    await client.delete_database(name)
    await client.close()
    await bootstrap.close(embedded)


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def one_message(rng: random.Random, i: int) -> dict[str, Any]:
    """A message of a known outcome (most delivered; some failed, retried, fallen
    back, expired; the cancelled and inbound ones are made apart)."""
    roll = rng.random()
    channel = CHANNELS[i % len(CHANNELS)]
    prefix, digits = rng.choice([("+479123", 4), ("+1415555", 4), ("+447911", 6), ("+336123", 5)])
    message: dict[str, Any] = {
        "channel": channel,
        "receiver": {"type": "phone", "address": f"{prefix}{i % 10**digits:0{digits}d}"},
        "content": {"type": "text", "text": "hi"},
        "tags": rng.sample(["otp", "eu", "promo", "vip", "retry"], rng.randint(0, 2)),
    }
    if roll < 0.10:
        message["options"] = {
            "sandbox": {"send": "fail", "error_code": rng.choice(["21211", "30003"])}
        }
    elif roll < 0.20:
        message["options"] = {"sandbox": {"send": "transient", "fail_times": 1}}
    elif roll < 0.25:
        message["options"] = {"sandbox": {"send": "fail"}}
        backup = CHANNELS[(i + 1) % len(CHANNELS)]
        message["fallback"] = {
            "channel": backup,
            "receiver": message["receiver"],
            "content": message["content"],
        }
    elif roll < 0.30:
        message["options"] = {"expires_at": later(1.5), "sandbox": {"send": "transient"}}
    elif roll < 0.33:
        message["options"] = {"sandbox": {"delivery": "failed"}}
    return message


async def send_everything(api: httpx.AsyncClient, keys: list[dict[str, str]], total: int) -> None:
    rng = random.Random(15)
    per_tenant = total // len(keys)
    for t, key in enumerate(keys):
        for name in CHANNELS:
            made = await api.post(
                "/api/v1/channels", json={"name": name, "type": "sandbox"}, headers=key
            )
            assert made.status_code == 201, made.text
        cancelled = max(1, per_tenant // 20)
        inbound = max(1, per_tenant // 20)
        batched = per_tenant - cancelled - inbound
        for start in range(0, batched, 500):
            # Made just before they are sent: the expiring ones expire 1.5 s from now.
            items = [
                one_message(rng, t * per_tenant + i)
                for i in range(start, min(start + 500, batched))
            ]
            answer = await api.post("/api/v1/messages/batch", json={"messages": items}, headers=key)
            assert answer.status_code == 202, answer.text
            refused = [i["error"] for i in answer.json()["items"] if i["error"]]
            assert refused == []
        for i in range(cancelled):
            body = {**one_message(rng, i), "send_at": later(3600)}
            body.pop("options", None)
            body.pop("fallback", None)
            sent = await api.post("/api/v1/messages", json=body, headers=key)
            assert sent.status_code == 202, sent.text
            gone = await api.post(f"/api/v1/messages/{sent.json()['id']}/cancel", headers=key)
            assert gone.status_code == 200, gone.text
        for i in range(inbound):
            sender = {"type": "phone", "address": f"+479123{i % 10_000:04d}"}
            body = {"sender": sender, "content": {"type": "text", "text": "hello"}}
            got = await api.post(
                f"/api/v1/channels/{CHANNELS[i % 5]}/simulate-inbound", json=body, headers=key
            )
            assert got.status_code == 202, got.text


async def settled(deps: Deps, tenants: list[str], timeout: float) -> None:
    """Every message of every tenant in a final state."""
    waiting = sorted({"scheduled", "queued", "sending", "sent", "retrying"} - DONE)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        open_ = 0
        for tenant in tenants:
            page = await deps.store.query(
                MESSAGES, Query(tenant, where=(Filter("status", "in", waiting),), limit=1)
            )
            open_ += len(page.items)
        if not open_:
            return
        assert asyncio.get_running_loop().time() < deadline, "messages never settled"
        await asyncio.sleep(0.5)


async def drain(deps: Deps, entity: str) -> list[bytes]:
    bodies: list[bytes] = []
    while batch := await deps.queue.receive(entity, max_messages=500):
        for msg in batch:
            bodies.append(msg.body)
            await deps.queue.complete(entity, msg)
    return bodies


async def all_messages(deps: Deps, tenant: str) -> list[Document]:
    found: list[Document] = []
    cursor = None
    while True:
        page = await deps.store.query(MESSAGES, Query(tenant, limit=1000, cursor=cursor))
        found.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return found


async def true_buckets(deps: Deps, tenant: str) -> dict[str, Document]:
    buckets: dict[str, Document] = {}
    for doc in await all_messages(deps, tenant):
        for fact in facts_of(doc):
            key = rollup.hour_id(tenant, fact.day, fact.hour)
            rollup.count(
                buckets.setdefault(key, rollup.new_bucket(tenant, fact.day, fact.hour)), fact
            )
    return buckets


async def stored_buckets(deps: Deps, tenant: str) -> dict[str, Document]:
    page = await deps.store.query(
        ROLLUPS, Query(tenant, where=(Filter("kind", "eq", "hour"),), limit=1000)
    )
    return {b["id"]: b for b in page.items}


async def count_with_faults(deps: Deps, bodies: list[bytes], rng: random.Random) -> int:
    """Each body delivered 1-3 times, shuffled, in batches of 1-256, by a consumer
    crashing in one transaction in 6: a crashed batch is redelivered later."""
    crashing = CrashingStore(deps.store, rng, one_in=6)
    faulty = dataclasses.replace(deps, store=crashing)
    deliveries = [b for b in bodies for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    batches: list[list[bytes]] = []
    while deliveries:
        size = rng.randint(1, 256)
        batches.append(deliveries[:size])
        deliveries = deliveries[size:]
    while batches:
        batch = batches.pop(0)
        try:
            await consumer.count(faulty, batch)
        except* Crash:
            batches.insert(rng.randint(0, len(batches)), batch)  # redelivered later
    return crashing.crashes


async def test_rollups_equal_the_message_store_after_duplicates_crashes_and_a_replay(
    platform: Deps, request: pytest.FixtureRequest
) -> None:
    deps = platform
    backend = request.node.callspec.params["platform"]
    total = MESSAGES_PER_BACKEND[backend]
    created = [await signup.create_tenant(deps, f"truth-{i}") for i in range(3)]
    tenants = [c.tenant["id"] for c in created]
    runtime = LocalRuntime(function_app.app, deps)
    runtime.triggers = [
        t for t in runtime.triggers if t.kind == "queue" and t.name != "count_events"
    ]
    consumers = asyncio.create_task(runtime.run_consumers())
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as api:
        await send_everything(api, [{"X-API-Key": c.api_key} for c in created], total)
    await settled(deps, tenants, timeout=60 + total / 20)
    runtime.stopping.set()
    await consumers
    await facts_out.flush(deps)  # what the instance still gathers

    subscription = (
        f"{deps.settings.OCM_EVENTS_TOPIC}/subscriptions/{deps.settings.OCM_ANALYTICS_SUBSCRIPTION}"
    )
    drained = await drain(deps, subscription)
    # Failures and expiries go out one by one (the events log takes them); the rest
    # is gathered. Each gathered event goes on its own too, so facts arrive in many
    # packings: alone, gathered, both, redelivered.
    gathered = [b for b in drained if facts_out.events_of(orjson.loads(b))]
    single = [b for b in drained if b not in gathered]
    alone = single + [
        orjson.dumps(e) for b in gathered for e in facts_out.events_of(orjson.loads(b))
    ]
    assert len(alone) >= total * 2  # accepted and at least one outcome each
    assert len(gathered) <= len(alone) / 100
    bodies = gathered + alone
    rng = random.Random(42)
    crashes = await count_with_faults(deps, bodies, rng)
    assert crashes >= 20
    replay = await consumer.count(deps, bodies)  # the subscription read from its start
    facts, skipped = consumer.facts(bodies)
    assert skipped == 0
    assert (replay.counted, replay.duplicates) == (0, len({(f.tenant_id, f.key) for f in facts}))

    outcomes: dict[str, int] = {}
    for tenant in tenants:
        true, stored = await true_buckets(deps, tenant), await stored_buckets(deps, tenant)
        assert set(stored) == set(true)
        differing = {k: reconcile.differences(stored[k], t) for k, t in true.items()}
        assert {k: v for k, v in differing.items() if v} == {}
        for bucket in true.values():
            for transition, n in bucket["counts"].items():
                outcomes[transition] = outcomes.get(transition, 0) + n
    for transition in (
        "accepted",
        "sent",
        "delivered",
        "failed",
        "expired",
        "cancelled",
        "fallback",
        "received",
    ):
        assert outcomes.get(transition, 0) > 0, f"no {transition} in the run: {outcomes}"

    # A clean run: the reconciliation finds nothing to correct.
    hours = sorted({b["hour"] for t in tenants for b in (await stored_buckets(deps, t)).values()})
    at = [datetime.strptime(h, "%Y-%m-%dT%H").replace(tzinfo=UTC) for h in hours]
    assert [await reconcile.reconcile_hour(deps, t, h) for t in tenants for h in at] == [0] * (
        len(tenants) * len(at)
    )

    # A bucket damaged on purpose is repaired, and the drift reported.
    victim = next(iter((await stored_buckets(deps, tenants[0])).values()))
    damaged = {
        **victim,
        "counts": {**victim["counts"], "delivered": victim["counts"].get("delivered", 0) + 7},
    }
    await deps.store.replace(ROLLUPS, damaged, etag=victim["_etag"])
    hour = datetime.strptime(victim["hour"], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    assert await reconcile.reconcile_hour(deps, tenants[0], hour) == 7
    repaired = (await stored_buckets(deps, tenants[0]))[victim["id"]]
    assert (
        reconcile.differences(repaired, (await true_buckets(deps, tenants[0]))[victim["id"]]) == []
    )
    topic = deps.settings.OCM_EVENTS_TOPIC
    log = f"{topic}/subscriptions/{deps.settings.OCM_EVENTS_LOG_SUBSCRIPTION}"
    drift = [orjson.loads(b) for b in await drain(deps, log) if b"analytics.drift" in b]
    assert [(e["tenant_id"], e["data"]["drift"]) for e in drift] == [(tenants[0], 7)]
