"""`python -m bench.analytics`: the analytics API under its two loads, as JSON.

1. **Queries over a year of data.** A data directory holding what 1,000,000 messages
   of one tenant over 13 months on 10 channels leave (the message documents, and the
   rollups they count into: the last 90 days' hour buckets, 13 months of day
   buckets, the closed months' buckets, the last 35 days' markers), made in process
   through the same store and rollup code; then `ocm serve` on it answers a 30-day
   hourly query grouped by channel and a 13-month daily one, each timed over HTTP.
   Targets: p95 < 200 ms and < 500 ms.
2. **Freshness while dispatching at full speed.** One tenant posts batches of 1,000
   as fast as the server takes them; another sends a probe message at a time and
   times from the probe's own `delivered` (its timeline) until the analytics API
   counts it. Target: p95 ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.servers import OcmServer, ocm_server
from bench.stats import parse_time, percentile, rounded
from bench.workload import batch_body, headers, message
from shared import bootstrap
from shared.config import Settings
from shared.containers import MESSAGES, ROLLUPS
from shared.domain.facts import Fact
from shared.domain.messages import to_utc_text
from shared.services.analytics import compact, rollup
from shared.services.onboarding import signup

CHANNELS = [f"ch{i}" for i in range(10)]
COUNTRIES = ["+4791234", "+1415555", "+3361234", "+4915112"]


def _facts(tenant_id: str, i: int, at: datetime, rng: random.Random) -> list[Fact]:
    dims = {
        "channel": CHANNELS[i % 10],
        "channel_type": "sms",
        "provider": "sandbox",
        "direction": "outbound",
        "country": ["NO", "US", "FR", "DE"][i % 4],
        "fallback_step": "0",
    }
    mid = f"msg_{i:07d}"
    sent = at + timedelta(seconds=rng.uniform(0.2, 3))
    end = sent + timedelta(seconds=rng.uniform(1, 30))
    last = "failed" if rng.random() < 0.04 else "delivered"
    return [
        Fact(tenant_id, mid, "accepted", at, dims, ("otp",), at),
        Fact(tenant_id, mid, "sent", sent, dims, ("otp",), at),
        Fact(tenant_id, mid, last, end, dims, ("otp",), at, sent),
    ]


def _document(tenant_id: str, i: int, at: datetime) -> dict[str, Any]:
    stamp = to_utc_text(at)
    return {
        "id": f"msg_{i:07d}",
        "tenant_id": tenant_id,
        "direction": "outbound",
        "status": "delivered",
        "channel": CHANNELS[i % 10],
        "channel_type": "sms",
        "provider": "sandbox",
        "receiver": {"type": "phone", "address": f"{COUNTRIES[i % 4]}{i % 10_000:04d}"},
        "content": {"type": "text", "text": "Your code is 1234"},
        "tags": ["otp"],
        "created_at": stamp,
        "updated_at": stamp,
        "events": [{"id": f"evt_{i}_0", "type": "message.queued", "at": stamp}],
    }


async def build_year(data_dir: Path, messages: int, now: datetime) -> tuple[str, str]:
    """The data directory of a tenant with ``messages`` over 13 months; (tenant, key)."""
    deps = bootstrap.build(Settings(OCM_DATA_DIR=data_dir, OCM_RATE_LIMIT_PER_SECOND=0))
    try:
        created = await signup.create_tenant(deps, "yearly")
        tenant = created.tenant["id"]
        rng = random.Random(15)
        start = now - timedelta(days=396)
        span = (now - start).total_seconds()
        hours: dict[str, dict[str, Any]] = {}
        markers: list[dict[str, Any]] = []
        recent = now - timedelta(days=35)
        docs: list[dict[str, Any]] = []
        for i in range(messages):
            at = start + timedelta(seconds=span * i / messages)
            for fact in _facts(tenant, i, at, rng):
                key = rollup.hour_id(tenant, fact.day, fact.hour)
                bucket = hours.get(key) or hours.setdefault(
                    key, rollup.new_bucket(tenant, fact.day, fact.hour)
                )
                rollup.count(bucket, fact)
                if fact.at >= recent:
                    markers.append(rollup.marker(fact))
            docs.append(_document(tenant, i, at))
            if len(docs) == 5000:
                await deps.store.create_many(MESSAGES, docs)
                docs = []
        if docs:
            await deps.store.create_many(MESSAGES, docs)
        for chunk in range(0, len(markers), 5000):
            await deps.store.create_many(ROLLUPS, markers[chunk : chunk + 5000])
        by_day: dict[str, list[dict[str, Any]]] = {}
        for bucket in hours.values():
            by_day.setdefault(bucket["partition"], []).append(bucket)
        kept_from = (now - timedelta(days=90)).strftime("%Y-%m-%dT%H")
        await deps.store.create_many(ROLLUPS, [b for b in hours.values() if b["hour"] >= kept_from])
        days = []
        for day, parts in sorted(by_day.items()):
            days.append(compact.day_bucket(tenant, day, parts))
        await deps.store.create_many(ROLLUPS, days)
        months: dict[str, list[dict[str, Any]]] = {}
        for day in days[:-1]:
            months.setdefault(day["partition"][:7], []).append(day)
        this_month = now.strftime("%Y-%m")
        await deps.store.create_many(
            ROLLUPS,
            [
                compact.month_bucket(tenant, month, parts)
                for month, parts in months.items()
                if month != this_month
            ],
        )
        await deps.flush()
        return tenant, created.api_key
    finally:
        await bootstrap.close(deps)


def _timed(client: httpx.Client, params: dict[str, str], repeats: int) -> dict[str, Any]:
    times, answer = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get("/api/v1/analytics/messages", params=params)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"query failed: {answer.status_code} {answer.text[:300]}")
    assert answer is not None
    found = answer.json()
    return {
        "params": params,
        "p50_ms": rounded(percentile(times, 50)),
        "p95_ms": rounded(percentile(times, 95)),
        "series": len(found["series"]),
        "points": sum(len(s["points"]) for s in found["series"]),
        "accepted": sum(s["totals"].get("accepted", 0) for s in found["series"]),
    }


def queries(messages: int, repeats: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="ocm-bench-analytics-"))
    now = datetime.now(UTC)
    try:
        started = time.monotonic()
        _, key = asyncio.run(build_year(data_dir, messages, now))
        built = time.monotonic() - started
        server = OcmServer(data_dir)
        server.start()
        try:
            with httpx.Client(base_url=server.url, headers=headers(key), timeout=60) as client:
                hourly = {
                    "from": (now - timedelta(days=30)).isoformat(),
                    "to": now.isoformat(),
                    "interval": "hour",
                    "group_by": "channel",
                }
                daily = {
                    "from": (now - timedelta(days=395)).isoformat(),
                    "to": now.isoformat(),
                    "interval": "day",
                }
                _timed(client, hourly, 3)  # warm the page cache
                return {
                    "messages_stored": messages,
                    "database_mb": round(server.database.stat().st_size / 1e6),
                    "seconds_to_build": round(built, 1),
                    "hourly_30_days_by_channel": _timed(client, hourly, repeats),
                    "daily_13_months": _timed(client, daily, repeats),
                    "targets": {"hourly_p95_ms": 200, "daily_p95_ms": 500},
                }
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def freshness(probes: int, load_batches: int) -> dict[str, Any]:
    with ocm_server() as server:
        load, probe = server.tenant_with_sandbox("load"), server.tenant_with_sandbox("probe")
        stop = threading.Event()
        sent = [0]

        def flood() -> None:
            body = batch_body(1000)
            with httpx.Client(base_url=server.url, headers=headers(load.api_key), timeout=60) as c:
                while not stop.is_set() and sent[0] < load_batches:
                    if c.post("/api/v1/messages/batch", content=body).status_code == 202:
                        sent[0] += 1

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        lags: list[float] = []
        with httpx.Client(base_url=server.url, headers=headers(probe.api_key), timeout=60) as c:
            time.sleep(1.0)  # the flood under way
            for n in range(1, probes + 1):
                receipted = {**message(), "options": {}}  # a delivery receipt follows
                answer = c.post("/api/v1/messages", content=orjson.dumps(receipted))
                probe_id = answer.json()["id"]
                delivered_at = None
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if delivered_at is None:
                        doc = c.get(f"/api/v1/messages/{probe_id}").json()
                        at = [e["at"] for e in doc["events"] if e["type"] == "message.delivered"]
                        delivered_at = parse_time(at[0]).timestamp() if at else None
                    if delivered_at is not None:
                        counts = c.get("/api/v1/analytics/messages", params={"interval": "day"})
                        totals = counts.json()["series"][0]["totals"]
                        if totals.get("delivered", 0) >= n:
                            lags.append(time.time() - delivered_at)
                            break
                    time.sleep(0.05)
                else:
                    raise RuntimeError(f"probe {n} never became visible")
        stop.set()
        thread.join(timeout=120)
        return {
            "probes": probes,
            "load_batches_of_1000_posted": sent[0],
            "delivered_to_visible_p50_s": rounded(percentile(lags, 50), 2),
            "delivered_to_visible_p95_s": rounded(percentile(lags, 95), 2),
            "delivered_to_visible_max_s": rounded(max(lags), 2),
            "target_p95_s": 5.0,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--load-batches", type=int, default=40)
    args = parser.parse_args(argv)
    print("bench.analytics: building a year of data", file=sys.stderr)
    result = {"queries": queries(args.messages, args.repeats)}
    print("bench.analytics: freshness under load", file=sys.stderr)
    result["freshness"] = freshness(args.probes, args.load_batches)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
