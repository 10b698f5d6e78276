"""(a) Single sends under concurrency: wrk POSTs to /api/v1/messages against the bare
FastAPI endpoint (bench/bare_app.py), then `ocm serve`, then `ocm serve` with the sends
scheduled a day ahead (intake only), in rounds: the machine's speed drifts, so each
round compares runs made seconds apart, and the figure is the median round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import orjson

from bench import profiling, wrk
from bench.plan import Plan
from bench.servers import Server, bare_server, ocm_server
from bench.stats import ratio, rounded
from bench.workload import message

PATH = "/api/v1/messages"


def _warm(tool: str, server: Server, api_key: str, plan: Plan, payload: dict[str, Any]) -> None:
    """Let the server finish its lazy set-up before anything is timed."""
    body, url, hdrs = _request(server, api_key, payload)
    wrk.run(tool, url, body, hdrs, connections=plan.connections, seconds=plan.warmup_seconds)
    server.check_alive()


def _request(server: Server, api_key: str, payload: dict[str, Any]) -> tuple[bytes, str, Any]:
    hdrs = {"X-API-Key": api_key or "ocm_baseline_has-no-key-check"}
    return orjson.dumps(payload), server.url + PATH, hdrs


def _load(
    tool: str,
    server: Server,
    api_key: str,
    plan: Plan,
    payload: dict[str, Any],
    profile: Path | None = None,
) -> wrk.WrkResult:
    body, url, hdrs = _request(server, api_key, payload)
    with profiling.recording(server.pid, profile):
        result = wrk.run(
            tool, url, body, hdrs, connections=plan.connections, seconds=plan.load_seconds
        )
    server.check_alive()
    return result


def run(plan: Plan) -> dict[str, Any]:
    tool = wrk.ensure_wrk()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = {**message(), "send_at": later}
    rounds: list[tuple[wrk.WrkResult, wrk.WrkResult, wrk.WrkResult]] = []
    with bare_server() as bare, ocm_server(plan.keep_data) as intake_server:
        # Intake only: sends scheduled a day ahead, so nothing is dispatched during the
        # run — the API's own intake, as when (in Azure) dispatch runs on other instances.
        intake_key = intake_server.tenant_with_sandbox().api_key
        _warm(tool, bare, "", plan, message())
        _warm(tool, intake_server, intake_key, plan, scheduled)
        for number in range(plan.rounds):
            base = _load(tool, bare, "", plan, message())
            # A fresh server each round: the backlog a round leaves (dispatched after
            # it) must not run during the next round's other measurements.
            with ocm_server(plan.keep_data) as ocm:
                api_key = ocm.tenant_with_sandbox().api_key
                _warm(tool, ocm, api_key, plan, message())
                profile = plan.profile("single_send") if number == 0 else None
                product = _load(tool, ocm, api_key, plan, message(), profile)
            intake = _load(tool, intake_server, intake_key, plan, scheduled)
            rounds.append((base, product, intake))
    per_round = [
        {
            "bare_rps": rounded(base.accepted_per_s),
            "ocm_rps": rounded(product.accepted_per_s),
            "intake_only_rps": rounded(intake.accepted_per_s),
            "ratio": ratio(product.accepted_per_s, base.accepted_per_s),
            "intake_only_ratio": ratio(intake.accepted_per_s, base.accepted_per_s),
        }
        for base, product, intake in rounds
    ]
    middle = _median_round(per_round, "ratio")
    base, product, intake = rounds[per_round.index(middle)]
    return {
        "bare_rps": middle["bare_rps"],
        "ocm_rps": middle["ocm_rps"],
        "ratio": middle["ratio"],
        "ocm_p50_ms": rounded(product.p50_ms, 2),
        "ocm_p99_ms": rounded(product.p99_ms, 2),
        "intake_only_rps": rounded(median(r["intake_only_rps"] or 0 for r in per_round)),
        "intake_only_ratio": median(r["intake_only_ratio"] or 0 for r in per_round),
        "intake_only_p99_ms": rounded(intake.p99_ms, 2),
        "bare_p50_ms": rounded(base.p50_ms, 2),
        "bare_p99_ms": rounded(base.p99_ms, 2),
        "ocm_errors": sum(p.errors for _, p, _ in rounds),
        "bare_errors": sum(b.errors for b, _, _ in rounds),
        "connections": plan.connections,
        "seconds": plan.load_seconds,
        "rounds": per_round,
        "load_generator": wrk.wrk_version(tool),
    }


def _median_round(per_round: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The round whose ``key`` is the median (the lower middle for an even count)."""
    ordered = sorted(per_round, key=lambda r: r[key] or 0)
    return ordered[(len(ordered) - 1) // 2]
