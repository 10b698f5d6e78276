"""(e) Webhook deliveries per second to a local receiver, against a same-run baseline.

The receiver (aiohttp, its own thread and loop) answers 204 to everything. The
baseline is a raw httpx client POSTing the same payloads, with the same headers
and concurrency, to the same receiver: what sending alone costs on this machine.
OCM's figure is the deliverer itself draining its queue with the same number of
concurrent workers — each delivery read from the queue, its subscription and
secrets looked up, signed (Standard Webhooks), POSTed through the egress guard,
its attempt recorded — as the webhook-queue trigger does. Deliveries are created
(fan-out) before the clock starts. Target: at least 60 % of the baseline.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.plan import Plan
from shared import bootstrap
from shared.config import Settings
from shared.containers import WEBHOOKS
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.webhooks import payload, webhook_secret_name
from shared.services.onboarding import signup
from shared.services.webhooks import deliverer as webhook_delivery
from shared.services.webhooks import fanout as webhook_fanout
from tests.peers.base import Peer

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64


class _Sink(Peer):
    def routes(self, app: Any) -> None:
        from aiohttp import web

        async def ok(_: web.Request) -> web.Response:
            return web.Response(status=204)

        app.router.add_post("/hook", ok)


def _events(count: int, tenant_id: str) -> list[dict[str, Any]]:
    now = to_utc_text(datetime.now(UTC))
    return [
        {
            "id": new_id("evt"),
            "type": "message.delivered",
            "timestamp": now,
            "tenant_id": tenant_id,
            "data": {
                "message_id": new_id("msg"),
                "channel": "sandbox",
                "status": "delivered",
                "attempt": 1,
                "context": {"order": f"A-{i}"},
                "tags": ["otp"],
            },
        }
        for i in range(count)
    ]


async def _baseline(url: str, events: list[dict[str, Any]], concurrency: int) -> float:
    bodies = [orjson.dumps(payload(e)) for e in events]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(timeout=15) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                answer = await client.post(
                    url,
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "webhook-id": "evt_x",
                        "webhook-timestamp": str(int(time.time())),
                        "webhook-signature": "v1,x",
                    },
                )
                answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


async def _ocm(url: str, count: int, concurrency: int, data_dir: Path) -> float:
    settings = Settings(OCM_DATA_DIR=data_dir, OCM_LOOKUP_CACHE_SECONDS=60)
    deps = bootstrap.build(settings)
    try:
        tenant_id = (await signup.create_tenant(deps, "bench")).tenant["id"]
        stamp = to_utc_text(deps.clock.now())
        subscription = await deps.store.create(
            WEBHOOKS,
            {
                "id": new_id("whk"),
                "tenant_id": tenant_id,
                "url": url,
                "events": ["message.*"],
                "filters": {},
                "header_names": [],
                "enabled": True,
                "retry_schedule": None,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
        await deps.secrets.set(
            webhook_secret_name(subscription["id"]),
            orjson.dumps([{"secret": SECRET, "expires_at": None}]).decode(),
        )
        for event in _events(count, tenant_id):
            await webhook_fanout.create_delivery(deps, subscription, event)
        await deps.flush()
        queue = settings.OCM_WEBHOOK_QUEUE
        done = 0

        async def worker() -> None:
            nonlocal done
            while done < count:
                batch = await deps.queue.receive(queue, max_messages=8)
                if not batch:
                    await asyncio.sleep(0.001)
                    continue
                for received in batch:
                    await webhook_delivery.deliver(deps, received.body)
                    await deps.queue.complete(queue, received)
                    done += 1

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 300)
        await deps.flush()
        return count / (time.perf_counter() - started)
    finally:
        await bootstrap.close(deps)


def run(plan: Plan) -> dict[str, Any]:
    count = 1_000 if plan.quick else 5_000
    concurrency = 16
    rounds = 1 if plan.quick else 3
    with _Sink().running() as sink:
        url = f"{sink.url}/hook"
        pairs = []
        for _ in range(rounds):  # alternate, so drift on a noisy machine hits both
            with tempfile.TemporaryDirectory() as tmp:
                base = asyncio.run(_baseline(url, _events(count, "tn_bench"), concurrency))
                ocm = asyncio.run(_ocm(url, count, concurrency, Path(tmp)))
            pairs.append((ocm, base))
    ratios = sorted(o / b for o, b in pairs)
    median = ratios[len(ratios) // 2]
    ocm_rate, base_rate = next((o, b) for o, b in pairs if o / b == median)
    return {
        "deliveries": count,
        "concurrency": concurrency,
        "rounds": [{"ocm_per_s": round(o, 1), "baseline_per_s": round(b, 1)} for o, b in pairs],
        "ocm_deliveries_per_s": round(ocm_rate, 1),
        "baseline_posts_per_s": round(base_rate, 1),
        "ratio": round(median, 3),
    }
