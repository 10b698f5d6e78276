"""(c) Dispatch: (1) throughput — accept many messages through the batch endpoint and
time them from the first one's creation to the last ``message.sent``; (2) latency — send
single messages at a fixed rate and time each from creation to its ``message.sent``.

Times come from the messages' own timeline (read from OCM's SQLite file, read-only).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson

from bench import profiling
from bench.intake import post_batches
from bench.plan import Plan
from bench.servers import BenchError, OcmServer, Tenant, ocm_server
from bench.stats import percentile, rounded
from bench.workload import created_at, headers, message, sent_at, stored_messages, wait_settled

PATH = "/api/v1/messages"
WARM_UP_MESSAGES = 20


def _warm_up(ocm: OcmServer, tenant: Tenant) -> set[str]:
    """A few single sends, dispatched before timing starts; returns their ids."""
    ids = set()
    with httpx.Client(headers=headers(tenant.api_key), timeout=30) as http:
        for _ in range(WARM_UP_MESSAGES):
            response = http.post(ocm.url + PATH, content=orjson.dumps(message()))
            if response.status_code != 202:
                raise BenchError(f"send refused: {response.status_code} {response.text}")
            ids.add(response.json()["id"])
    if not wait_settled(ocm.database, tenant.tenant_id, len(ids), timeout=30):
        raise BenchError("the warm-up messages were never dispatched")
    return ids


def throughput(plan: Plan, intake_per_s: float | None) -> dict[str, Any]:
    batches = math.ceil(plan.dispatch_messages / plan.batch_size)
    long_enough = replace(plan, batch_seconds=plan.dispatch_timeout)
    with ocm_server(plan.keep_data) as ocm:
        tenant = ocm.tenant_with_sandbox()
        warm = _warm_up(ocm, tenant)
        with profiling.recording(ocm.pid, plan.profile("dispatch")):
            started = time.monotonic()
            intake = asyncio.run(post_batches(ocm.url, tenant.api_key, long_enough, batches))
            left = max(1.0, plan.dispatch_timeout - (time.monotonic() - started))
            expected = intake.accepted + len(warm)
            complete = wait_settled(ocm.database, tenant.tenant_id, expected, left)
        ocm.check_alive()
        docs = [d for d in stored_messages(ocm.database) if d["id"] not in warm]
    sent = [t for d in docs if (t := sent_at(d)) is not None]
    span = max(sent) - min(created_at(d) for d in docs) if sent else 0.0
    return {
        "msgs_per_s": rounded(len(sent) / span) if span > 0 else None,
        "intake_msgs_per_s": rounded(intake_per_s),
        "own_intake_msgs_per_s": rounded(intake.per_s),
        "messages": intake.accepted,
        "sent": len(sent),
        "complete": complete and len(sent) == intake.accepted,
        "seconds": rounded(span, 2),
    }


@dataclass
class Paced:
    ids: list[str] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)
    refused: int = 0
    seconds: float = 0.0


async def send_paced(url: str, api_key: str, rate: float, seconds: float) -> Paced:
    """Start one POST every 1/rate seconds, without waiting for earlier answers."""
    out = Paced()
    body = orjson.dumps(message())
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers(api_key), timeout=30, limits=limits) as http:

        async def one() -> None:
            began = time.perf_counter()
            response = await http.post(url + PATH, content=body)
            out.response_ms.append((time.perf_counter() - began) * 1000)
            if response.status_code == 202:
                out.ids.append(orjson.loads(response.content)["id"])
            else:
                out.refused += 1

        tasks = []
        start = time.perf_counter()
        for i in range(round(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        out.seconds = time.perf_counter() - start
        await asyncio.gather(*tasks)
    return out


def latency(plan: Plan) -> dict[str, Any]:
    with ocm_server(plan.keep_data) as ocm:
        tenant = ocm.tenant_with_sandbox()
        warm = _warm_up(ocm, tenant)
        with profiling.recording(ocm.pid, plan.profile("accept_to_provider")):
            paced = asyncio.run(
                send_paced(ocm.url, tenant.api_key, plan.paced_rate, plan.paced_seconds)
            )
            expected = len(paced.ids) + len(warm)
            settled = wait_settled(ocm.database, tenant.tenant_id, expected, plan.paced_timeout)
        ocm.check_alive()
        docs = {d["id"]: d for d in stored_messages(ocm.database)}
    delays = []
    for message_id in paced.ids:
        doc = docs[message_id]
        if (at := sent_at(doc)) is not None:
            delays.append((at - created_at(doc)) * 1000)
    offered = len(paced.ids) + paced.refused
    return {
        "rate_per_s": plan.paced_rate,
        "achieved_rate_per_s": rounded(offered / paced.seconds) if paced.seconds else None,
        "p50_ms": rounded(percentile(delays, 50)),
        "p99_ms": rounded(percentile(delays, 99)),
        "max_ms": rounded(max(delays, default=None)),
        "messages": len(paced.ids),
        "sent": len(delays),
        "refused": paced.refused,
        "complete": settled and len(delays) == len(paced.ids),
        "response_p50_ms": rounded(percentile(paced.response_ms, 50)),
        "response_p99_ms": rounded(percentile(paced.response_ms, 99)),
        "time_resolution_ms": 1,
    }
