"""Saved reports: a tenant's named analytics queries, run on demand over a window
relative to now (the last N days), so a dashboard or a script asks for "weekly
delivery by country" by name. Kept in ``rollups`` (partition ``reports``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.containers import ROLLUPS
from shared.domain.errors import ConflictError, NotFoundError
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import Conflict, Filter, Query
from shared.services.analytics import latency, query
from shared.services.analytics import outcomes as outcomes_of
from shared.services.deps import Deps

MAX_REPORTS = 100


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .:/-]+$")
    kind: Literal["messages", "outcomes", "latency"] = "messages"
    days: int = Field(default=7, ge=1, le=3650, description="The window: the last N days.")
    interval: Literal["hour", "day", "week", "month"] = "day"
    tz: str = Field(default="UTC", max_length=64)
    group_by: str | None = Field(default=None, max_length=32)
    filter: str | None = Field(default=None, max_length=512)
    metrics: str | None = Field(default=None, max_length=256)
    metric: str = Field(default="accept_to_delivered", max_length=64)


def _id(tenant_id: str, report_id: str) -> str:
    return f"reports|{tenant_id}|{report_id}"


def public(doc: Document) -> Document:
    return {"id": doc["report_id"], **doc["report"], "created_at": doc["created_at"]}


async def run_report(deps: Deps, tenant_id: str, spec: ReportCreate) -> dict[str, Any]:
    """The report's query over its window ending now (422 as the query would)."""
    end = deps.clock.now()
    start = end - timedelta(days=spec.days)
    if spec.kind == "latency":
        return await latency.latency(
            deps,
            tenant_id,
            start=start,
            end=end,
            metric=spec.metric,
            group_by=spec.group_by,
            filter_=spec.filter,
        )
    if spec.kind == "outcomes":
        return await outcomes_of.outcomes(
            deps, tenant_id, start=start, end=end, interval=spec.interval, tz=spec.tz
        )
    return await query.messages(
        deps,
        tenant_id,
        start=start,
        end=end,
        interval=spec.interval,
        tz=spec.tz,
        group_by=spec.group_by,
        filter_=spec.filter,
        metrics=spec.metrics,
    )


async def list_reports(deps: Deps, tenant_id: str) -> list[Document]:
    where = (Filter("kind", "eq", "report"),)
    page = await deps.store.query(ROLLUPS, Query(tenant_id, where, limit=MAX_REPORTS))
    return sorted(page.items, key=lambda d: str(d["report"]["name"]))


async def create_report(deps: Deps, tenant_id: str, spec: ReportCreate) -> Document:
    """A new report; checked by running it once (a bad one is refused as its query)."""
    await run_report(deps, tenant_id, spec)
    existing = await list_reports(deps, tenant_id)
    if any(r["report"]["name"] == spec.name for r in existing):
        raise ConflictError(f"A report named {spec.name!r} exists", code="REPORT_EXISTS")
    if len(existing) >= MAX_REPORTS:
        raise ConflictError(f"At most {MAX_REPORTS} reports per tenant", code="TOO_MANY_REPORTS")
    report_id = new_id("rpt", deps.clock.now())
    doc = {
        "id": _id(tenant_id, report_id),
        "tenant_id": tenant_id,
        "partition": "reports",
        "kind": "report",
        "report_id": report_id,
        "report": spec.model_dump(),
        "created_at": to_utc_text(deps.clock.now()),
    }
    try:
        return await deps.store.create(ROLLUPS, doc)
    except Conflict:  # the same id twice: a retried request
        raise ConflictError("The report exists", code="REPORT_EXISTS") from None


async def get_report(deps: Deps, tenant_id: str, report_id: str) -> Document:
    doc = await deps.store.read(ROLLUPS, tenant_id, _id(tenant_id, report_id))
    if doc is None or doc.get("kind") != "report":
        raise NotFoundError(f"No report {report_id!r}", code="REPORT_NOT_FOUND")
    return doc


def spec_of(doc: Document) -> ReportCreate:
    return ReportCreate.model_validate(doc["report"])


async def delete_report(deps: Deps, tenant_id: str, report_id: str) -> None:
    await get_report(deps, tenant_id, report_id)
    await deps.store.delete(ROLLUPS, tenant_id, _id(tenant_id, report_id))
