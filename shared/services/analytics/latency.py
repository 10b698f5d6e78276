"""Latency over a window: the hour buckets' histograms merged, per channel, provider
or country (``rollup.LATENCY_BY``), as percentiles and shares within N seconds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain.facts import LATENCIES
from shared.services.analytics import histogram, retention
from shared.services.analytics.query import buckets, invalid, selection, window
from shared.services.analytics.rollup import LATENCY_BY
from shared.services.deps import Deps

METRICS = tuple(dict.fromkeys(m for ms in LATENCIES.values() for m in ms))
PERCENTILES = (50, 90, 95, 99)


def _latency_of(
    bucket: Mapping[str, Any], metric: str, group_by: str | None, kept: Sequence[str]
) -> Iterable[tuple[str | None, Mapping[str, Any]]]:
    if group_by is None:
        found = (bucket.get("latency") or {}).get(metric)
        if found:
            yield None, found
        return
    for value, by_metric in ((bucket.get("latency_by") or {}).get(group_by) or {}).items():
        if (not kept or value in kept) and metric in by_metric:
            yield value, by_metric[metric]


async def latency(
    deps: Deps,
    tenant_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    metric: str = "accept_to_delivered",
    group_by: str | None = None,
    filter_: str | None = None,
) -> dict[str, Any]:
    """Percentiles (±5 %: the histograms' bins) and the exact share within each of
    ``histogram.THRESHOLDS`` seconds, per group, over the window."""
    kept = await retention.of(deps, tenant_id)
    span = window(deps.clock.now(), start, end, "hour", "UTC", kept)
    if metric not in METRICS:
        invalid("metric", f"one of {', '.join(METRICS)}", "Unknown latency metric")
    grouped = group_by is not None
    # A filter alone reads the filtered dimension's histograms as one group.
    grouped_by, only = selection(group_by, filter_, LATENCY_BY)
    parts: dict[str | None, list[Mapping[str, Any]]] = {}
    for bucket in await buckets(deps, tenant_id, span):
        for value, found in _latency_of(bucket, metric, grouped_by, only):
            parts.setdefault(value if grouped else None, []).append(found)
    rows = []
    for value in sorted(parts, key=lambda v: (v is None, v or "")):
        total = histogram.merged(parts[value])
        rows.append(
            {
                "group": value,
                "count": total["n"],
                "mean": round(total["ms"] / total["n"] / 1000, 3) if total["n"] else None,
                **{f"p{p}": histogram.quantile(total, p / 100) for p in PERCENTILES},
                "within": {str(s): histogram.share_within(total, s) for s in histogram.THRESHOLDS},
            }
        )
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "metric": metric,
        "group_by": group_by,
        "groups": rows,
    }
