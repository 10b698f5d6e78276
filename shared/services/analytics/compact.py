"""Compaction and retention: reconciled hours rolled into days, days into months.

Once every hour of a UTC day is reconciled, its hour buckets are merged into one
day bucket (``<day>|<tenant>|d|<day>``, in the day's own partition); once every day
of a month is, the days into a month bucket (``<month>-01|<tenant>|mo|<month>``).
Merging adds counts and histograms and, per dimension, keeps the MAX_VALUES values
with the largest totals (the true top N of the period; the rest as ``other``).

Retention is each bucket's ``ttl``, from its last write, the tenant's
(``retention``): by default hours 90 days, days 13 months, months until the tenant
is deleted. Queries choose the finest buckets a window's age allows (``query``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from shared.containers import ROLLUPS
from shared.domain.models import Document
from shared.ports import Filter, Query
from shared.services.analytics import histogram, retention
from shared.services.analytics.rollup import MAX_VALUES, OTHER
from shared.services.deps import Deps

PARTS = ("counts", "usage", "by", "tags", "latency", "latency_by", "cohort")


def day_id(tenant_id: str, day: str) -> str:
    return f"{day}|{tenant_id}|d|{day}"


def month_id(tenant_id: str, month: str) -> str:
    return f"{month}-01|{tenant_id}|mo|{month}"


def _add_counts(into: dict[str, Any], counts: Mapping[str, Any]) -> None:
    for key, value in counts.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value


def _top(values: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The MAX_VALUES values with the largest totals; the others added to ``other``."""
    if len(values) <= MAX_VALUES:
        return values
    ranked = sorted((v for v in values if v != OTHER), key=lambda v: (-sum(values[v].values()), v))
    kept = {v: values[v] for v in ranked[:MAX_VALUES]}
    rest = dict(values.get(OTHER) or {})
    for value in ranked[MAX_VALUES:]:
        _add_counts(rest, values[value])
    kept[OTHER] = rest
    return kept


def merged(buckets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The parts of many buckets as one."""
    total: dict[str, Any] = {p: {} for p in PARTS}
    latency: dict[str, list[Mapping[str, Any]]] = {}
    latency_by: dict[str, dict[str, dict[str, list[Mapping[str, Any]]]]] = {}
    for bucket in buckets:
        _add_counts(total["counts"], bucket.get("counts") or {})
        _add_counts(total["cohort"], bucket.get("cohort") or {})
        _add_counts(total["usage"], bucket.get("usage") or {})
        for dimension, values in (bucket.get("by") or {}).items():
            into = total["by"].setdefault(dimension, {})
            for value, counts in values.items():
                _add_counts(into.setdefault(value, {}), counts)
        for tag, counts in (bucket.get("tags") or {}).items():
            _add_counts(total["tags"].setdefault(tag, {}), counts)
        for metric, found in (bucket.get("latency") or {}).items():
            latency.setdefault(metric, []).append(found)
        for dimension, values in (bucket.get("latency_by") or {}).items():
            for value, metrics in values.items():
                for metric, found in metrics.items():
                    per = latency_by.setdefault(dimension, {}).setdefault(value, {})
                    per.setdefault(metric, []).append(found)
    total["by"] = {d: _top(v) for d, v in total["by"].items()}
    total["tags"] = _top(total["tags"])
    total["latency"] = {m: histogram.merged(h) for m, h in latency.items()}
    total["latency_by"] = {
        d: {v: {m: histogram.merged(h) for m, h in ms.items()} for v, ms in values.items()}
        for d, values in latency_by.items()
    }
    for part in ("cohort", "usage"):
        if not total[part]:
            del total[part]
    return total


async def _kind(deps: Deps, tenant_id: str, kind: str, first: str, end: str) -> list[Document]:
    where = (Filter("kind", "eq", kind), Filter("hour", "gte", first), Filter("hour", "lt", end))
    page = await deps.store.query(ROLLUPS, Query(tenant_id, where, order_by="hour", limit=1000))
    return page.items


def day_bucket(tenant_id: str, day: str, hours: Iterable[Mapping[str, Any]]) -> Document:
    """The day bucket of ``day`` (``2026-12-07``) made of its hour buckets."""
    return _bucket(day_id(tenant_id, day), tenant_id, "day", day, hours)


def month_bucket(tenant_id: str, month: str, days: Iterable[Mapping[str, Any]]) -> Document:
    """The month bucket of ``month`` (``2026-12``) made of its day buckets."""
    return _bucket(month_id(tenant_id, month), tenant_id, "month", f"{month}-01", days)


def _bucket(
    doc_id: str, tenant_id: str, kind: str, first_day: str, parts: Iterable[Mapping[str, Any]]
) -> Document:
    """A bucket of ``kind`` starting on ``first_day`` (its partition), ``parts`` merged."""
    return {
        "id": doc_id,
        "tenant_id": tenant_id,
        "partition": first_day,
        "kind": kind,
        "hour": f"{first_day}T00",
        **merged(parts),
    }


async def compact_day(deps: Deps, tenant_id: str, day: date) -> bool:
    """The day's hour buckets as one day bucket (False: the day had none)."""
    text = day.isoformat()
    hours = await _kind(deps, tenant_id, "hour", f"{text}T00", f"{text}T24")
    if not hours:
        return False
    doc = day_bucket(tenant_id, text, hours)
    doc["ttl"] = (await retention.of(deps, tenant_id)).ttl("day")
    # An upsert: a run that stopped before its state mark compacts the day again.
    await deps.store.upsert(ROLLUPS, doc)
    return True


async def compact_month(deps: Deps, tenant_id: str, month: str) -> bool:
    """The month's day buckets as one month bucket (``month``: ``2026-12``)."""
    first = date.fromisoformat(f"{month}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    days = await _kind(deps, tenant_id, "day", f"{month}-01T00", f"{following.isoformat()}T00")
    if not days:
        return False
    doc = month_bucket(tenant_id, month, days)
    ttl = (await retention.of(deps, tenant_id)).ttl("month")
    if ttl is not None:
        doc["ttl"] = ttl
    await deps.store.upsert(ROLLUPS, doc)
    return True


async def compact(deps: Deps, tenant_id: str, state: Document, through: datetime) -> Document:
    """Days (and months) whose hours are all reconciled (``through``: the last
    reconciled hour) and not compacted yet; returns the state to keep."""
    last_day = (through + timedelta(hours=1)).date() - timedelta(days=1)
    done = state.get("compacted_through")
    day = date.fromisoformat(done) + timedelta(days=1) if done else last_day
    changed = dict(state)
    while day <= last_day:
        await compact_day(deps, tenant_id, day)
        if (day + timedelta(days=1)).month != day.month:
            await compact_month(deps, tenant_id, day.strftime("%Y-%m"))
        changed["compacted_through"] = day.isoformat()
        day += timedelta(days=1)
    return changed
