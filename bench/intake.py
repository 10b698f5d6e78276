"""(b) Batch intake: POST /api/v1/messages/batch with 1000 messages per request from a
few concurrent clients, against raw SQLite inserts of the same stored documents."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import profiling
from bench.plan import Plan
from bench.servers import BenchError, ocm_server
from bench.stats import ratio, rounded
from bench.workload import batch_body, headers, stored_messages, wait_settled

PATH = "/api/v1/messages/batch"


@dataclass(frozen=True)
class Intake:
    accepted: int
    rejected: int
    requests: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


async def post_batches(url: str, api_key: str, plan: Plan, batches: int) -> Intake:
    """Send up to ``batches`` batches (within ``plan.batch_seconds`` when that is shorter)."""
    body = batch_body(plan.batch_size)
    remaining = list(range(batches))
    counts = {"accepted": 0, "rejected": 0, "requests": 0}
    started = time.perf_counter()
    deadline = started + max(plan.batch_seconds, 1.0)

    async def client() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(headers=headers(api_key), timeout=120, limits=limits) as http:
            while remaining and time.perf_counter() < deadline:
                remaining.pop()
                response = await http.post(url + PATH, content=body)
                if response.status_code != 202:
                    raise BenchError(f"batch refused: {response.status_code} {response.text}")
                items = orjson.loads(response.content)["items"]
                accepted = sum(1 for item in items if item["id"] is not None)
                counts["accepted"] += accepted
                counts["rejected"] += len(items) - accepted
                counts["requests"] += 1

    await asyncio.gather(*(client() for _ in range(plan.batch_clients)))
    return Intake(seconds=time.perf_counter() - started, **counts)


def as_accepted(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored message trimmed back to what intake wrote (its first timeline entry)."""
    first = doc["events"][:1]
    return {
        **doc,
        "status": first[0]["status"] if first else "queued",
        "events": first,
        "attempts": 0,
        "provider_message_id": None,
        "updated_at": doc["created_at"],
        "pending_events": [e["id"] for e in first],
        "outbox_at": doc["created_at"],
        "events_at": doc["created_at"],
    }


def raw_sqlite_rate(docs: list[dict[str, Any]], batch_size: int) -> float:
    """Documents per second: orjson-encode and executemany each batch into a fresh
    ``docs(id, body)`` table (WAL, synchronous=NORMAL), one transaction per batch."""
    with tempfile.TemporaryDirectory(prefix="ocm-bench-raw-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            started = time.perf_counter()
            for start in range(0, len(docs), batch_size):
                chunk = docs[start : start + batch_size]
                rows = [(d["id"], orjson.dumps(d).decode()) for d in chunk]
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO docs (id, body) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            seconds = time.perf_counter() - started
        finally:
            conn.close()
    return len(docs) / seconds if seconds else 0.0


def run(plan: Plan) -> dict[str, Any]:
    with ocm_server(plan.keep_data) as ocm:
        tenant = ocm.tenant_with_sandbox()
        # One batch first, dispatched before timing starts, so lazy set-up is not timed.
        warm = asyncio.run(post_batches(ocm.url, tenant.api_key, plan, 1))
        if not wait_settled(ocm.database, tenant.tenant_id, warm.accepted, timeout=60):
            raise BenchError("the warm-up batch was never dispatched")
        repeats: list[Intake] = []
        settled = warm.accepted
        for number in range(plan.batch_repeats):
            profile = plan.profile("batch_intake") if number == 0 else None
            with profiling.recording(ocm.pid, profile):
                repeats.append(
                    asyncio.run(post_batches(ocm.url, tenant.api_key, plan, plan.batches))
                )
            ocm.check_alive()
            # What a repeat accepted is dispatched before the next one starts.
            settled += repeats[-1].accepted
            if not wait_settled(ocm.database, tenant.tenant_id, settled, timeout=120):
                raise BenchError("a repeat's messages were never dispatched")
        docs = [as_accepted(d) for d in stored_messages(ocm.database)][
            : plan.batches * plan.batch_size
        ]
    raw = raw_sqlite_rate(docs, plan.batch_size)
    intake = sorted(repeats, key=lambda r: r.per_s)[(len(repeats) - 1) // 2]  # the median
    return {
        "ocm_msgs_per_s": rounded(intake.per_s),
        "repeats_msgs_per_s": [rounded(r.per_s) for r in repeats],
        "raw_sqlite_msgs_per_s": rounded(raw),
        "ratio": ratio(intake.per_s, raw),
        "messages": intake.accepted,
        "rejected": intake.rejected,
        "batches": intake.requests,
        "batch_size": plan.batch_size,
        "clients": plan.batch_clients,
        "seconds": rounded(intake.seconds, 2),
    }
