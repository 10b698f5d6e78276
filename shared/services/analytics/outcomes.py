"""The cohorts: what became of the messages accepted in each interval, as each hour's
reconciliation found them (``reconcile.cohort_of``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.services.analytics import retention
from shared.services.analytics.query import buckets, series, window
from shared.services.deps import Deps

COHORT = ("accepted", "sent", "delivered", "read", "failed", "expired", "cancelled", "pending")


async def outcomes(
    deps: Deps,
    tenant_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    interval: str = "day",
    tz: str = "UTC",
) -> dict[str, Any]:
    """What became of the messages accepted in each interval, as each hour's
    reconciliation found it (``reconcile.cohort_of``); hours not reconciled yet
    (the open ones) are listed in ``unreconciled``."""
    kept = await retention.of(deps, tenant_id)
    span = window(deps.clock.now(), start, end, interval, tz, kept)
    found = await buckets(deps, tenant_id, span)
    cohorts = [{"hour": b["hour"], "counts": b["cohort"]} for b in found if b.get("cohort")]
    result = series(cohorts, span, None, (), COHORT, grouped=False)
    result["unreconciled"] = sorted(
        b["hour"] for b in found if not b.get("cohort") and (b.get("counts") or {}).get("accepted")
    )
    return result
