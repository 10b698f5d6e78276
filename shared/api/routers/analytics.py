"""/api/v1/analytics: counts of messages per interval and latency percentiles, read
from the rollups (docs/analytics.md). ``Accept: text/csv`` answers any query as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from shared.api.deps import Caller, scoped
from shared.api.responses import JsonResponse
from shared.api.schemas import problems
from shared.services.analytics import latency as latencies
from shared.services.analytics import outcomes as outcomes_of
from shared.services.analytics import query, reports, retention, thresholds
from shared.services.analytics.histogram import THRESHOLDS

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Reader = Annotated[Caller, scoped("read:analytics")]
From = Annotated[
    datetime | None, Query(alias="from", description="Start (default: 24 hours before `to`).")
]
To = Annotated[datetime | None, Query(alias="to", description="End, exclusive (default: now).")]
GroupBy = Annotated[
    str | None, Query(description="One dimension: " + ", ".join(query.GROUPS), max_length=32)
]
Only = Annotated[
    str | None,
    Query(
        alias="filter",
        max_length=512,
        description="`<dimension>:<value>[|<value>…]`, on the `group_by` dimension or alone.",
    ),
]
CSV = {"text/csv": {"schema": {"type": "string"}}}


def _wants_csv(request: Request) -> bool:
    return "text/csv" in (request.headers.get("accept") or "")


def _rows(kind: str, result: dict[str, Any]) -> list[list[Any]]:
    """A query's answer as CSV rows: one per point (``messages``, ``outcomes``) or per
    group (``latency``), the header first."""
    if kind == "latency":
        within = [str(s) for s in THRESHOLDS]
        percentiles = [f"p{p}" for p in latencies.PERCENTILES]
        rows: list[list[Any]] = [
            ["group", "count", "mean", *percentiles, *(f"within_{s}s" for s in within)]
        ]
        for g in result["groups"]:
            shares = [g["within"][s] for s in within]
            rows.append([g["group"], g["count"], g["mean"], *(g[p] for p in percentiles), *shares])
        return rows
    names = result["metrics"]
    if kind == "outcomes":  # one series: no group column
        (line,) = result["series"]
        return [["start", *names], *([p["start"], *(p[m] for m in names)] for p in line["points"])]
    rows = [["start", "group", *names]]
    for line in result["series"]:
        rows.extend([p["start"], line["group"], *(p[m] for m in names)] for p in line["points"])
    return rows


def _csv(rows: Iterable[list[Any]], name: str) -> StreamingResponse:
    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/messages",
    summary="Messages per interval: accepted, sent, delivered, failed, …",
    description="Counts of each transition per `interval` in the time zone `tz`, over the "
    "group values of one dimension if `group_by` is given; every interval of the window "
    "is present. Each transition counts once per message, in the hour it happened.",
    responses={200: {"content": CSV}, **problems(401, 403, 422)},
)
async def message_counts(
    request: Request,
    caller: Reader,
    start: From = None,
    end: To = None,
    interval: Annotated[str, Query(description="hour, day, week or month")] = "hour",
    tz: Annotated[str, Query(max_length=64, description="An IANA zone")] = "UTC",
    group_by: GroupBy = None,
    only: Only = None,
    metrics: Annotated[str | None, Query(max_length=256)] = None,
) -> Any:
    result = await query.messages(
        caller.deps,
        caller.tenant_id,
        start=start,
        end=end,
        interval=interval,
        tz=tz,
        group_by=group_by,
        filter_=only,
        metrics=metrics,
    )
    if not _wants_csv(request):
        return JsonResponse(result)
    return _csv(_rows("messages", result), "messages")


@router.get(
    "/outcomes",
    summary="What became of the messages accepted in each interval",
    description="Per interval of acceptance: how many were accepted, sent, delivered, "
    "read, failed, expired, cancelled, or are still pending, as each hour's "
    "reconciliation (shortly after the hour closes) found them; delivered + failed + "
    "expired + cancelled + pending = accepted. Hours not reconciled yet are listed in "
    "`unreconciled`.",
    responses={200: {"content": CSV}, **problems(401, 403, 422)},
)
async def outcomes(
    request: Request,
    caller: Reader,
    start: From = None,
    end: To = None,
    interval: Annotated[str, Query(description="hour, day, week or month")] = "day",
    tz: Annotated[str, Query(max_length=64, description="An IANA zone")] = "UTC",
) -> Any:
    result = await outcomes_of.outcomes(
        caller.deps, caller.tenant_id, start=start, end=end, interval=interval, tz=tz
    )
    if not _wants_csv(request):
        return JsonResponse(result)
    return _csv(_rows("outcomes", result), "outcomes")


@router.get(
    "/latency",
    summary="Latency percentiles and the share within N seconds",
    description="p50/p90/p95/p99 (within 5 %) and the exact share of messages whose step "
    "took at most 1, 5, 10, 30, 60, 300 and 3600 s, per channel, provider or country.",
    responses={200: {"content": CSV}, **problems(401, 403, 422)},
)
async def latency(
    request: Request,
    caller: Reader,
    start: From = None,
    end: To = None,
    metric: Annotated[str, Query(description=", ".join(latencies.METRICS))] = (
        "accept_to_delivered"
    ),
    group_by: Annotated[str | None, Query(description="channel, provider or country")] = None,
    only: Only = None,
) -> Any:
    result = await latencies.latency(
        caller.deps,
        caller.tenant_id,
        start=start,
        end=end,
        metric=metric,
        group_by=group_by,
        filter_=only,
    )
    if not _wants_csv(request):
        return JsonResponse(result)
    return _csv(_rows("latency", result), "latency")


Manager = Annotated[Caller, scoped("manage:analytics")]


@router.post(
    "/reports",
    status_code=201,
    summary="Save a report: a named analytics query over the last N days",
    description="`kind` is `messages`, `outcomes` or `latency`; the other fields are that "
    "query's parameters, and `days` its window, ending when it is run. The report is run "
    "once to check it: a query the API would refuse is refused here too.",
    responses={201: {"content": {"application/json": {}}}, **problems(401, 403, 409, 422)},
)
async def create_report(spec: reports.ReportCreate, caller: Manager) -> JsonResponse:
    doc = await reports.create_report(caller.deps, caller.tenant_id, spec)
    await caller.audit("analytics.report.create", type="report", id=doc["report_id"])
    return JsonResponse(reports.public(doc), status_code=201)


@router.get(
    "/reports",
    summary="The tenant's saved reports, by name",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 403)},
)
async def list_reports(caller: Reader) -> JsonResponse:
    found = await reports.list_reports(caller.deps, caller.tenant_id)
    return JsonResponse({"items": [reports.public(d) for d in found], "next_cursor": None})


@router.get(
    "/reports/{report_id}",
    summary="Run a saved report over its window ending now",
    description="The same answer as its query (JSON, or CSV with `Accept: text/csv`), with "
    "the report's definition under `report`.",
    responses={200: {"content": CSV}, **problems(401, 403, 404, 422)},
)
async def run_report(request: Request, report_id: str, caller: Reader) -> Any:
    doc = await reports.get_report(caller.deps, caller.tenant_id, report_id)
    spec = reports.spec_of(doc)
    result = await reports.run_report(caller.deps, caller.tenant_id, spec)
    if not _wants_csv(request):
        return JsonResponse({**result, "report": reports.public(doc)})
    return _csv(_rows(spec.kind, result), spec.name.replace(" ", "_"))


@router.delete(
    "/reports/{report_id}",
    status_code=204,
    summary="Delete a saved report",
    responses={**problems(401, 403, 404)},
)
async def delete_report(report_id: str, caller: Manager) -> Response:
    await reports.delete_report(caller.deps, caller.tenant_id, report_id)
    await caller.audit("analytics.report.delete", type="report", id=report_id)
    return Response(status_code=204)


@router.get(
    "/thresholds",
    summary="The tenant's usage thresholds",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 403)},
)
async def get_thresholds(caller: Reader) -> JsonResponse:
    found = await thresholds.get(caller.deps, caller.tenant_id)
    return JsonResponse(found.model_dump())


@router.put(
    "/thresholds",
    summary="Set the tenant's usage thresholds (all of them)",
    description="Each `{metric, period, limit}`: when the period's count (UTC day or "
    "month) reaches `limit`, one `usage.threshold_reached` event goes to the webhooks that "
    "take it. At most 20.",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 403, 422)},
)
async def put_thresholds(wanted: thresholds.Thresholds, caller: Manager) -> JsonResponse:
    saved = await thresholds.put(caller.deps, caller.tenant_id, wanted)
    await caller.audit("analytics.thresholds.set", type="thresholds", count=len(saved.thresholds))
    return JsonResponse(saved.model_dump())


@router.get(
    "/retention",
    summary="How long the tenant's analytics are kept",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 403)},
)
async def get_retention(caller: Reader) -> JsonResponse:
    return JsonResponse((await retention.of(caller.deps, caller.tenant_id)).model_dump())


@router.put(
    "/retention",
    summary="Set how long the tenant's hour, day and month buckets are kept",
    description="Days after each bucket's last write (`month_days: null`: for good). It "
    "applies to buckets as they are next written, and at once to how far back queries "
    "reach.",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 403, 422)},
)
async def put_retention(wanted: retention.Retention, caller: Manager) -> JsonResponse:
    saved = await retention.put(caller.deps, caller.tenant_id, wanted)
    await caller.audit("analytics.retention.set", type="retention", **saved.model_dump())
    return JsonResponse(saved.model_dump())
