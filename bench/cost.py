"""`python -m bench.cost`: what one delivered message costs in Cosmos DB and Service Bus
operations, counted by instrumenting the adapters during an end-to-end run.

The run: the real HTTP API (ASGI, in process) and the real trigger functions of
function_app.py (run by the local runtime, as `ocm serve` runs them), on the Cosmos
DB document store against the local Cosmos server, and the embedded queue behind a
meter that counts every call the Functions host or our adapter would make to
Service Bus. Messages are sandbox SMS: accepted → sent → delivered, with the events
of each step published. Prints JSON (see docs/cost.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

import function_app
from bench.pricing import priced, priced_provisioned
from ocm_cli.local_runtime import LocalRuntime
from shared import bootstrap
from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client, create_containers
from shared.adapters.embedded.clock import SystemClock
from shared.adapters.embedded.secrets import EncryptedSecretStore, load_or_create_key
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.adapters.embedded.sqlite_queue import SqliteQueue
from shared.api.app import create_app
from shared.config import Settings
from shared.containers import CONTAINERS, MESSAGES
from shared.ports import OutgoingMessage, Query, ReceivedMessage
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.support import cosmos


class MeteredQueue:
    """The Queue port, counting what Service Bus would bill: each message sent (a
    batch send counts its messages), each message received, each settlement."""

    def __init__(self, inner: SqliteQueue) -> None:
        self._inner = inner
        self.operations: Counter[str] = Counter()

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        # The Service Bus adapter answers from the same rules (bootstrap.topic_subscriptions).
        return self._inner.reaches_anyone(entity, application_properties)

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        self.operations[f"send:{entity}"] += len(messages)
        await self._inner.send(entity, messages)

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]:
        got = await self._inner.receive(
            entity, max_messages=max_messages, lock_seconds=lock_seconds
        )
        self.operations[f"receive:{entity}"] += len(got)
        return got

    async def complete(self, entity: str, message: ReceivedMessage) -> None:
        self.operations[f"complete:{entity}"] += 1
        await self._inner.complete(entity, message)

    async def abandon(self, entity: str, message: ReceivedMessage) -> None:
        self.operations[f"abandon:{entity}"] += 1
        await self._inner.abandon(entity, message)

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None:
        self.operations[f"dead_letter:{entity}"] += 1
        await self._inner.dead_letter(entity, message, reason)

    async def wait_for_messages(self, entity: str, timeout: float) -> None:
        await self._inner.wait_for_messages(entity, timeout)


@contextmanager
def cosmos_account() -> Iterator[tuple[str, str, bool]]:
    """(endpoint, key, real): a real account when OCM_TEST_COSMOS_ENDPOINT and
    OCM_TEST_COSMOS_KEY are set (its request charges are real), else the local server."""
    endpoint = os.environ.get("OCM_TEST_COSMOS_ENDPOINT", "")
    key = os.environ.get("OCM_TEST_COSMOS_KEY", "")
    if endpoint and key:
        yield endpoint, key, True
        return
    with cosmos.running() as server:
        yield server.endpoint, server.key, False


async def run(messages: int, batch: bool, analytics: bool = True) -> dict[str, Any]:
    settings = Settings(
        OCM_DATA_DIR=Path(tempfile.mkdtemp(prefix="ocm-cost-")), OCM_ANALYTICS_ENABLED=analytics
    )
    with cosmos_account() as (endpoint, key, real):
        async with build_cosmos_client(endpoint, key) as client:
            database = await client.create_database_if_not_exists(
                f"ocm-cost-{uuid.uuid4().hex[:8]}"
            )
            await create_containers(database, CONTAINERS)
            clock = SystemClock()
            db = SqliteDatabase(settings.database_path)
            queue = MeteredQueue(
                SqliteQueue(
                    db,
                    clock,
                    topics=bootstrap.topic_subscriptions(settings),
                )
            )
            store = CosmosDocumentStore(database, CONTAINERS)
            secrets = EncryptedSecretStore(db, load_or_create_key(settings.OCM_DATA_DIR, None))
            deps = bootstrap.platform(
                settings,
                store,
                queue,
                secrets,
                clock,
                flush=db.flush,
            )
            bootstrap.set_deps(deps)
            try:
                result = await _measure(deps, store, queue, messages, batch)
            finally:
                bootstrap.set_deps(None)
                db.close()
                await client.delete_database(database.id)
            result["cosmos"] = "account" if real else "local server (request charges not real)"
            if real:
                result["request_units_per_message"] = _per(store.meter.request_units, messages)
                result["request_units_total_per_message"] = round(
                    sum(store.meter.request_units.values()) / messages, 2
                )
            return result


async def _measure(
    deps: Deps, store: CosmosDocumentStore, queue: MeteredQueue, count: int, batch: bool
) -> dict[str, Any]:
    created = await signup.create_tenant(deps, "cost")
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(lambda: deps)),
        base_url="http://ocm",
        headers={"X-API-Key": created.api_key},
    )
    runtime = LocalRuntime(function_app.app, deps)
    consumers = asyncio.create_task(runtime.run_consumers())
    async with api:
        answer = await api.post("/api/v1/channels", json={"name": "sms", "type": "sandbox"})
        answer.raise_for_status()
        # Count from here: the path of a message, not the set-up.
        store.meter.operations.clear()
        store.meter.request_units.clear()
        queue.operations.clear()
        message = {
            "channel": "sms",
            "receiver": {"type": "phone", "address": "+4791234567"},
            "content": {"type": "text", "text": "Your code is 1234"},
            "context": {"order": "A-17"},
        }
        started = time.monotonic()
        if batch:
            for start in range(0, count, 1000):
                size = min(1000, count - start)
                answer = await api.post(
                    "/api/v1/messages/batch", json={"messages": [message] * size}
                )
                answer.raise_for_status()
        else:
            for _ in range(count):
                (await api.post("/api/v1/messages", json=message)).raise_for_status()
        await _until_delivered(deps, created.tenant["id"], count)
        if deps.settings.OCM_ANALYTICS_ENABLED:
            await _until_counted(deps, created.tenant["id"], count)
        elapsed = time.monotonic() - started
    runtime.stopping.set()
    await consumers
    sample = (await deps.store.query(MESSAGES, Query(scope=created.tenant["id"], limit=1))).items[0]
    return {
        "messages": count,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "message_document_bytes": len(orjson.dumps(sample)),
        "cosmos_operations_per_message": _per(store.meter.operations, count),
        "service_bus_operations_per_message": _per(queue.operations, count),
        "cosmos_operations_total_per_message": round(
            sum(store.meter.operations.values()) / count, 3
        ),
        "service_bus_operations_total_per_message": round(
            sum(queue.operations.values()) / count, 3
        ),
    }


async def _until_delivered(deps: Deps, tenant_id: str, count: int) -> None:
    from shared.ports import Filter

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page = await deps.store.query(
            MESSAGES,
            Query(scope=tenant_id, where=(Filter("status", "ne", "delivered"),), limit=1),
        )
        if not page.items:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"not every one of {count} messages was delivered in time")


async def _until_counted(deps: Deps, tenant_id: str, count: int) -> None:
    """Until analytics counted every message delivered (its events gathered, sent
    and consumed)."""
    from shared.services.analytics import query

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = await query.messages(deps, tenant_id, start=None, end=None, interval="day")
        if sum(line["totals"]["delivered"] for line in found["series"]) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"analytics did not count the {count} messages in time")


def _per(counter: Mapping[str, float], count: int) -> dict[str, float]:
    return {k: round(v / count, 3) for k, v in sorted(counter.items())}


PROVISIONED_LOADS = (25, 50, 100, 164, 325)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args(argv)
    results = {
        "single": asyncio.run(run(args.messages, batch=False)),
        "batch": asyncio.run(run(args.messages, batch=True)),
        "single_without_analytics": asyncio.run(run(args.messages, False, analytics=False)),
        "batch_without_analytics": asyncio.run(run(args.messages, True, analytics=False)),
    }
    for result in results.values():
        result["priced"] = priced(result)
        # The provisioned tier's defaults at steady loads up to its ceiling (325/s).
        result["priced_provisioned"] = [
            priced_provisioned(result, load) for load in PROVISIONED_LOADS
        ]
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
