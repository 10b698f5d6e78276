"""Reading the rollups: counts per interval (hour, day, week, month in the tenant's
time zone) and latency percentiles, from the hour buckets ``rollup`` writes.

A bucket counts each dimension on its own (its ``by`` maps one dimension's values to
their counts), not their combinations: a query groups by one dimension, and may keep
only some values of that same dimension (``filter``). Intervals are made of whole UTC
hours: in a zone whose offset is not whole hours, an hour straddling local midnight
counts in the day it starts in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.containers import ROLLUPS
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.facts import DIMENSIONS, TRANSITIONS
from shared.domain.models import Document
from shared.ports import Filter, Query
from shared.services.analytics import retention
from shared.services.analytics.retention import DEFAULT, Retention
from shared.services.deps import Deps

INTERVALS = ("hour", "day", "week", "month")
GROUPS = (*DIMENSIONS, "tag")
METRICS = (*TRANSITIONS, "segments", "cost_usd")
"""The transitions, ``segments`` (SMS segments sent; not per dimension value) and
``cost_usd`` (accepted x OCM_COST_PER_MILLION_USD: docs/cost.md's model, an estimate);
a query without ``metrics`` asks for the transitions."""
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    """UTC, on the hour."""
    end: datetime
    """UTC, on the hour, exclusive."""
    interval: str
    tz: ZoneInfo
    kept: Retention = DEFAULT
    """The tenant's retention: how far back each kind of bucket reaches."""

    def hours(self) -> Iterator[datetime]:
        at = self.start
        while at < self.end:
            yield at
            at += timedelta(hours=1)

    def interval_of(self, hour: datetime) -> str:
        """The start of the interval an hour (UTC) falls in, in the window's zone."""
        local = hour.astimezone(self.tz)
        if self.interval == "hour":
            start = local.replace(minute=0, second=0, microsecond=0)
        else:
            day = local.date()
            if self.interval == "week":
                day -= timedelta(days=day.weekday())
            elif self.interval == "month":
                day = day.replace(day=1)
            start = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return start.isoformat()


def invalid(field: str, detail: str, message: str, code: str = "VALIDATION_FAILED") -> None:
    raise ValidationFailed(message, code=code, errors=[FieldError(field, detail)])


def window(
    now: datetime,
    start: datetime | None,
    end: datetime | None,
    interval: str,
    tz: str,
    kept: Retention = DEFAULT,
) -> Window:
    """The query's window, checked: no further back than its interval's buckets are
    kept (the tenant's ``Retention``; 422 with the allowed window beyond), ``from`` before
    ``to`` (default: the last 24 hours)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        invalid("tz", "an IANA time zone name, such as Europe/Paris", "Unknown time zone")
    if interval not in INTERVALS:
        invalid("interval", f"one of {', '.join(INTERVALS)}", "Unknown interval")
    end = _aware(end, zone) if end is not None else now
    start = _aware(start, zone) if start is not None else end - timedelta(days=1)
    first = _floor_hour(start)
    last = _floor_hour(end) + (timedelta(hours=1) if end != _floor_hour(end) else timedelta())
    if first >= last:
        invalid("from", "must be before to", "The window is empty")
    days, finest = kept.reach(interval)
    allowed = _floor_hour(now - timedelta(days=days))
    if first < allowed:
        invalid(
            "from",
            f"at or after {allowed.isoformat()} ({finest} buckets are kept {days} days; "
            "a coarser interval reaches further)",
            "The window reaches past what analytics keeps",
            code="ANALYTICS_BEYOND_RETENTION",
        )
    return Window(first, last, interval, zone, kept)


def _aware(at: datetime, zone: ZoneInfo) -> datetime:
    return (at if at.tzinfo is not None else at.replace(tzinfo=zone)).astimezone(UTC)


def _floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def selection(
    group_by: str | None, filter_: str | None, choices: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """``group_by`` and the values ``filter`` keeps (``<dimension>:<v>[|<v>…]``, on the
    group_by dimension, or alone)."""
    if group_by is not None and group_by not in choices:
        invalid("group_by", f"one of {', '.join(choices)}", "Unknown dimension")
    if not filter_:
        return group_by, ()
    dimension, sep, values = filter_.partition(":")
    kept = tuple(v for v in values.split("|") if v)
    if not sep or not kept or dimension not in choices:
        invalid("filter", "<dimension>:<value>[|<value>...]", "The filter is not valid")
    if group_by is not None and dimension != group_by:
        invalid(
            "filter",
            f"on the group_by dimension ({group_by}): buckets count each dimension on its own",
            "A filter must be on the dimension the query groups by",
            code="ANALYTICS_FILTER_NOT_GROUPED",
        )
    return dimension, kept


def metric_names(metrics: str | None) -> tuple[str, ...]:
    if not metrics:
        return TRANSITIONS
    names = tuple(dict.fromkeys(m.strip() for m in metrics.split(",") if m.strip()))
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        invalid("metrics", f"some of {', '.join(METRICS)}", "Unknown metric")
    return names


async def buckets(deps: Deps, tenant_id: str, span: Window) -> list[Document]:
    """The buckets that count the window once (a prefix query on the tenant): a
    month or a day bucket where the window covers its whole month or day and the
    zone is UTC (their bounds are UTC's), else the hours, while they are kept."""
    if span.interval == "hour":
        return await stored_buckets(deps, tenant_id, span, ["hour"])
    utc = span.tz.utcoffset(span.start) == timedelta(0) and span.tz.key in ("UTC", "Etc/UTC")
    whole: set[str] = set()  # days counted by a coarser bucket
    chosen: list[Document] = []
    coarse = await stored_buckets(deps, tenant_id, span, ["day", "month"])
    for bucket in sorted(coarse, key=lambda b: b["kind"] != "month"):
        start = _hour(bucket)
        end = (
            (start + timedelta(days=32)).replace(day=1)
            if bucket["kind"] == "month"
            else (start + timedelta(days=1))
        )
        days = {(start + timedelta(days=d)).date().isoformat() for d in range((end - start).days)}
        hours_kept = start >= deps.clock.now() - timedelta(days=span.kept.hour_days - 1)
        if span.start <= start and end <= span.end and not days & whole and (utc or not hours_kept):
            chosen.append(bucket)
            whole |= days
    # The hours of the days no coarser bucket counts: from the first of them on
    # (compaction leaves the last day or so; a zone other than UTC, all kept hours).
    days_in = (span.start + timedelta(days=d) for d in range((span.end - span.start).days + 1))
    open_days = [d for d in days_in if d.date().isoformat() not in whole and d < span.end]
    if open_days:
        first = max(span.start, open_days[0].replace(hour=0))
        rest = Window(first, span.end, span.interval, span.tz)
        for bucket in await stored_buckets(deps, tenant_id, rest, ["hour"]):
            if _hour(bucket).date().isoformat() not in whole:
                chosen.append(bucket)
    return chosen


async def stored_buckets(
    deps: Deps, tenant_id: str, span: Window, kinds: Sequence[str]
) -> list[Document]:
    where = (
        Filter("kind", "in", list(kinds)),
        Filter("hour", "gte", span.start.strftime("%Y-%m-%dT%H")),
        Filter("hour", "lt", span.end.strftime("%Y-%m-%dT%H")),
    )
    found: list[Document] = []
    cursor: str | None = None
    while True:
        page = await deps.store.query(
            ROLLUPS, Query(tenant_id, where, order_by="hour", limit=PAGE, cursor=cursor)
        )
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


def _hour(bucket: Mapping[str, Any]) -> datetime:
    return datetime.strptime(bucket["hour"], "%Y-%m-%dT%H").replace(tzinfo=UTC)


def _groups(
    bucket: Mapping[str, Any], group_by: str | None, kept: Sequence[str]
) -> Iterable[tuple[str | None, Mapping[str, int]]]:
    """(group value, counts per transition) of one bucket."""
    if group_by is None:
        yield None, {**(bucket.get("counts") or {}), **(bucket.get("usage") or {})}
        return
    values = bucket.get("tags") if group_by == "tag" else (bucket.get("by") or {}).get(group_by)
    for value, counts in (values or {}).items():
        if not kept or value in kept:
            yield value, counts


def series(
    found: Iterable[Mapping[str, Any]],
    span: Window,
    group_by: str | None,
    kept: Sequence[str],
    metrics: Sequence[str],
    grouped: bool,
) -> dict[str, Any]:
    """Counts per interval and group, every interval present (zeros where none)."""
    starts = list(dict.fromkeys(span.interval_of(h) for h in span.hours()))
    table: dict[str | None, dict[str, dict[str, int]]] = {}
    for bucket in found:
        start = span.interval_of(_hour(bucket))
        for value, counts in _groups(bucket, group_by, kept):
            key = value if grouped else None
            row = table.setdefault(key, {}).setdefault(start, dict.fromkeys(metrics, 0))
            for metric in metrics:
                row[metric] += int(counts.get(metric, 0))
    if not table and not grouped:
        table[None] = {}
    out = []
    for value in sorted(table, key=lambda v: (v is None, v or "")):
        rows = table[value]
        counted = [rows.get(s) or dict.fromkeys(metrics, 0) for s in starts]
        totals = {m: sum(c[m] for c in counted) for m in metrics}
        points = [{"start": s, **c} for s, c in zip(starts, counted, strict=True)]
        out.append({"group": value, "points": points, "totals": totals})
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "interval": span.interval,
        "tz": span.tz.key,
        "group_by": group_by if grouped else None,
        "metrics": list(metrics),
        "series": out,
    }


async def messages(
    deps: Deps,
    tenant_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    interval: str = "hour",
    tz: str = "UTC",
    group_by: str | None = None,
    filter_: str | None = None,
    metrics: str | None = None,
) -> dict[str, Any]:
    span = window(deps.clock.now(), start, end, interval, tz, await retention.of(deps, tenant_id))
    names = metric_names(metrics)
    dimension, kept = selection(group_by, filter_, GROUPS)
    if dimension is not None and "segments" in names:
        invalid(
            "metrics",
            "segments is counted per bucket, not per value of a dimension",
            "segments cannot be grouped or filtered",
        )
    found = await buckets(deps, tenant_id, span)
    if "cost_usd" not in names:
        return series(found, span, dimension, kept, names, grouped=group_by is not None)
    read = tuple(dict.fromkeys(n for n in (*names, "accepted") if n != "cost_usd"))
    result = series(found, span, dimension, kept, read, grouped=group_by is not None)
    rate = deps.settings.OCM_COST_PER_MILLION_USD / 1e6
    for line in result["series"]:
        for counts in (*line["points"], line["totals"]):
            counts["cost_usd"] = round(counts["accepted"] * rate, 6)
            if "accepted" not in names:
                del counts["accepted"]
    result["metrics"] = list(names)
    return result
