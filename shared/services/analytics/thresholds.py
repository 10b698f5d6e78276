"""Usage thresholds: a tenant's limits on a count per UTC day or month (messages
accepted, sent, delivered, failed, SMS segments), each announced once per period by
a ``usage.threshold_reached`` event when the rollups reach it.

The consumer asks after counting a batch (``check``), at most every CHECK_EVERY
seconds per tenant and instance; the period's total is read from the rollups, and a
marker per threshold and period makes the event go out once whatever the instances.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.containers import ROLLUPS
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import Conflict
from shared.services.analytics import query
from shared.services.deps import Deps
from shared.services.events.publish import publish_platform_event

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0
MAX_THRESHOLDS = 20


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["accepted", "sent", "delivered", "failed", "segments", "cost_usd"]
    period: Literal["day", "month"]
    limit: float = Field(gt=0, le=10**12, description="A count, or USD for cost_usd")

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.metric}|{self.period}|{self.limit}".encode()).hexdigest()[:16]


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: list[Threshold] = Field(default_factory=list, max_length=MAX_THRESHOLDS)


def _id(tenant_id: str) -> str:
    return f"thresholds|{tenant_id}|set"


async def get(deps: Deps, tenant_id: str) -> Thresholds:
    doc = await deps.store.read(ROLLUPS, tenant_id, _id(tenant_id))
    return Thresholds.model_validate({"thresholds": (doc or {}).get("thresholds") or []})


async def put(deps: Deps, tenant_id: str, wanted: Thresholds) -> Thresholds:
    doc = {
        "id": _id(tenant_id),
        "tenant_id": tenant_id,
        "partition": "thresholds",
        "kind": "thresholds",
        "thresholds": [t.model_dump() for t in wanted.thresholds],
    }
    await deps.store.upsert(ROLLUPS, doc)
    deps.lookups.forget(("thresholds", tenant_id))
    return wanted


def period_start(now: datetime, period: str) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


async def _totals(
    deps: Deps, tenant_id: str, period: str, metrics: Iterable[str], now: datetime
) -> dict[str, float]:
    """The current period's figure of each metric (one query for all of them)."""
    found = await query.messages(
        deps,
        tenant_id,
        start=period_start(now, period),
        end=now,
        interval=period,
        metrics=",".join(dict.fromkeys(metrics)),
    )
    totals: dict[str, float] = {}
    for line in found["series"]:
        for metric, value in line["totals"].items():
            totals[metric] = totals.get(metric, 0) + value
    return totals


async def _announce(
    deps: Deps, tenant_id: str, threshold: Threshold, now: datetime, value: float
) -> bool:
    """Publish the event unless its period's mark exists, then mark: a crash between
    the two publishes again under the same event id (duplicate detection drops it)."""
    start = period_start(now, threshold.period)
    stamp = start.strftime("%Y%m%d")
    mark: Document = {
        "id": f"thresholds|{tenant_id}|{threshold.key}:{stamp}",
        "tenant_id": tenant_id,
        "partition": "thresholds",
        "kind": "threshold_reached",
        "ttl": 40 * 86_400,
    }
    if await deps.store.read(ROLLUPS, tenant_id, mark["id"]) is not None:
        return False  # announced for this period already
    data = {**threshold.model_dump(), "period_start": to_utc_text(start), "value": value}
    event_id = f"evt_usage_{tenant_id}_{threshold.key}_{stamp}"
    await publish_platform_event(
        deps, tenant_id, "usage.threshold_reached", data, event_id=event_id
    )
    try:
        await deps.store.create(ROLLUPS, mark)
    except Conflict:
        return False  # another instance announced it meanwhile (the same event id)
    log.info("tenant %s reached %s", tenant_id, data)
    return True


async def check(deps: Deps, tenants: Iterable[str]) -> int:
    """Announce what the tenants' counts reached; returns how many were announced."""
    announced = 0
    seen: dict[str, float] = deps.buffers.setdefault("thresholds_checked", {})
    now = deps.clock.now()
    for tenant_id in set(tenants):
        if time.monotonic() - seen.get(tenant_id, -CHECK_EVERY) < CHECK_EVERY:
            continue
        seen[tenant_id] = time.monotonic()

        async def load(tenant: str = tenant_id) -> Document:
            return {"thresholds": [t.model_dump() for t in (await get(deps, tenant)).thresholds]}

        cached = await deps.lookups.get(("thresholds", tenant_id), load)
        wanted = [Threshold.model_validate(raw) for raw in (cached or {}).get("thresholds") or []]
        for period in {t.period for t in wanted}:
            of_period = [t for t in wanted if t.period == period]
            totals = await _totals(deps, tenant_id, period, (t.metric for t in of_period), now)
            for threshold in of_period:
                value = totals.get(threshold.metric, 0)
                if value >= threshold.limit and await _announce(
                    deps, tenant_id, threshold, now, value
                ):
                    announced += 1
    return announced
