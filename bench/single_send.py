"""(a) Single sends under concurrency: wrk POSTs to /api/v1/messages, first against the
bare FastAPI endpoint (bench/bare_app.py), then against `ocm serve`, one after the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import profiling, wrk
from bench.plan import Plan
from bench.servers import Server, bare_server, ocm_server
from bench.stats import ratio, rounded
from bench.workload import message

PATH = "/api/v1/messages"


def _load(
    tool: str,
    server: Server,
    api_key: str,
    plan: Plan,
    profile: Path | None = None,
    payload: dict[str, Any] | None = None,
) -> wrk.WrkResult:
    body = orjson.dumps(payload or message())
    url = server.url + PATH
    hdrs = {"X-API-Key": api_key or "ocm_baseline_has-no-key-check"}
    # The warm-up lets the server finish its lazy set-up before anything is timed.
    wrk.run(tool, url, body, hdrs, connections=plan.connections, seconds=plan.warmup_seconds)
    server.check_alive()
    with profiling.recording(server.pid, profile):
        result = wrk.run(
            tool, url, body, hdrs, connections=plan.connections, seconds=plan.load_seconds
        )
    server.check_alive()
    return result


def run(plan: Plan) -> dict[str, Any]:
    tool = wrk.ensure_wrk()
    with bare_server() as bare:
        base = _load(tool, bare, "", plan)
    with ocm_server(plan.keep_data) as ocm:
        api_key = ocm.tenant_with_sandbox().api_key
        product = _load(tool, ocm, api_key, plan, plan.profile("single_send"))
    # The same sends scheduled a day ahead: nothing is dispatched during the run, so
    # this is the API's own intake, as when (in Azure) dispatch runs on other instances.
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with ocm_server(plan.keep_data) as ocm:
        api_key = ocm.tenant_with_sandbox().api_key
        intake = _load(tool, ocm, api_key, plan, payload={**message(), "send_at": later})
    return {
        "bare_rps": rounded(base.accepted_per_s),
        "ocm_rps": rounded(product.accepted_per_s),
        "ratio": ratio(product.accepted_per_s, base.accepted_per_s),
        "ocm_p50_ms": rounded(product.p50_ms, 2),
        "ocm_p99_ms": rounded(product.p99_ms, 2),
        "intake_only_rps": rounded(intake.accepted_per_s),
        "intake_only_ratio": ratio(intake.accepted_per_s, base.accepted_per_s),
        "intake_only_p99_ms": rounded(intake.p99_ms, 2),
        "bare_p50_ms": rounded(base.p50_ms, 2),
        "bare_p99_ms": rounded(base.p99_ms, 2),
        "ocm_errors": product.errors,
        "bare_errors": base.errors,
        "connections": plan.connections,
        "seconds": plan.load_seconds,
        "load_generator": wrk.wrk_version(tool),
    }
