"""Rollups counted exactly once: facts grouped by rollup partition (tenant + day),
and per partition, in one transaction (``DocumentStore.transact``), a marker per
fact (``<day>|<tenant>|m|<message id>:<transition>``) and the hour buckets' new counts. A
marker that exists already fails the whole transaction with a Conflict naming it:
that fact was counted before (a redelivery, a replay, a second consumer) and is
dropped, and the rest is tried again. A crash anywhere leaves each partition either
counted or not; the redelivered batch counts what is not.

An hour bucket (``<day>|<tenant>|h|<hour>``) holds, per transition, its total, its count per
value of each dimension and per tag, and the latency histograms of the steps it
ends (``histogram``), overall and per channel, provider and country. A dimension
keeps at most MAX_VALUES distinct values per bucket, the first seen; later ones
count under ``other``, so a bucket stays small (well under Cosmos DB's 2 MB and
Service Bus's reach) with any number of distinct tags or senders.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.containers import ROLLUPS
from shared.domain.facts import Fact
from shared.domain.models import Document
from shared.ports import (
    MAX_TRANSACTION_WRITES,
    BatchFailed,
    Conflict,
    DocumentStore,
    Filter,
    NotFound,
    PreconditionFailed,
    Query,
    Write,
)
from shared.services.analytics import histogram

MAX_VALUES = 50
"""Distinct values a bucket keeps per dimension (and for tags); the rest: ``other``."""
OTHER = "other"
LATENCY_BY = ("channel", "provider", "country")
MARKER_TTL = 35 * 24 * 3600
"""Seconds a marker is kept: past any redelivery (minutes: 10 deliveries under a
one-minute lock) and any replay (the event log keeps events 30 days)."""
HOUR_TTL = 90 * 86_400
"""Seconds an hour bucket is kept after its last write (compaction keeps its day)."""
MAX_ROUNDS = 50
"""Failed transactions a partition may retry before giving up (the message is redelivered)."""


@dataclass(frozen=True, slots=True)
class Applied:
    counted: int
    duplicates: int
    facts: tuple[Fact, ...] = ()
    """The facts counted now (not those counted before)."""


def hour_id(tenant_id: str, day: str, hour: str) -> str:
    """An hour bucket's id: its day (the partition), its tenant (ids are unique
    across tenants on the embedded store), its hour."""
    return f"{day}|{tenant_id}|h|{hour}"


def marker_id(fact: Fact) -> str:
    return f"{fact.day}|{fact.tenant_id}|m|{fact.key}"


def marker(fact: Fact) -> Document:
    """The document saying a fact was counted (kept MARKER_TTL seconds)."""
    return {
        "id": marker_id(fact),
        "tenant_id": fact.tenant_id,
        "partition": fact.day,
        "ttl": MARKER_TTL,
    }


def new_bucket(tenant_id: str, day: str, hour: str) -> Document:
    return {
        "id": hour_id(tenant_id, day, hour),
        "tenant_id": tenant_id,
        "partition": day,
        "kind": "hour",
        "hour": hour,
        "ttl": HOUR_TTL,
        "counts": {},
        "by": {},
        "tags": {},
        "latency": {},
        "latency_by": {},
    }


def count(bucket: Document, fact: Fact) -> None:
    """Add one fact to a bucket."""
    count_all(bucket, (fact,))


def count_all(bucket: Document, facts: Iterable[Fact]) -> None:
    """Add facts to a bucket, alike ones (the same transition, dimensions and tags)
    at once, and each step's durations to its histograms together: the same counts
    as one by one, for a fraction of the work (a chunk's facts are mostly alike)."""
    alike: dict[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], int] = {}
    durations: dict[tuple[str, str | None, str | None], list[float]] = {}
    segments = 0
    for fact in facts:
        key = (fact.transition, tuple(fact.dims.items()), fact.tags)
        alike[key] = alike.get(key, 0) + 1
        segments += fact.segments
        for metric, seconds in fact.latencies().items():
            durations.setdefault((metric, None, None), []).append(seconds)
            for dimension in LATENCY_BY:
                held = fact.dims.get(dimension)
                if held is not None:
                    durations.setdefault((metric, dimension, held), []).append(seconds)
    counts = bucket["counts"]
    for (transition, dims, tags), n in alike.items():
        counts[transition] = counts.get(transition, 0) + n
        for dimension, value in dims:
            by_value = bucket["by"].setdefault(dimension, {})
            _add(by_value, _kept(by_value, value), transition, n)
        for tag in tags:
            _add(bucket["tags"], _kept(bucket["tags"], tag), transition, n)
    if segments:
        usage = bucket.setdefault("usage", {})
        usage["segments"] = usage.get("segments", 0) + segments
    for (metric, by, named), spans in durations.items():
        if by is None or named is None:
            target = bucket["latency"].setdefault(metric, histogram.empty())
        else:
            values = bucket["latency_by"].setdefault(by, {})
            per_value = values.setdefault(_kept(values, named), {})
            target = per_value.setdefault(metric, histogram.empty())
        histogram.add_all(target, spans)


def _kept(values: Mapping[str, Any], value: str) -> str:
    if value in values or len(values) < MAX_VALUES or value == OTHER:
        return value
    return OTHER


def _add(values: dict[str, Any], value: str, transition: str, n: int = 1) -> None:
    counts = values.setdefault(value, {})
    counts[transition] = counts.get(transition, 0) + n


async def apply(
    store: DocumentStore, facts: Iterable[Fact], hour_ttl: Mapping[str, int] | None = None
) -> Applied:
    """Count each fact not counted before; partitions are applied concurrently
    (``hour_ttl``: per tenant, the seconds its hour buckets are kept; default HOUR_TTL)."""
    unique = {(f.tenant_id, f.key): f for f in facts}
    by_partition: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for fact in unique.values():
        by_partition[(fact.tenant_id, fact.day)].append(fact)
    # A failure in one partition cancels the others: its batch is redelivered whole.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    _apply_partition(
                        store, tenant, day, facts, (hour_ttl or {}).get(tenant, HOUR_TTL)
                    )
                )
                for (tenant, day), facts in by_partition.items()
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    results = [task.result() for task in tasks]
    return Applied(
        sum(r.counted for r in results),
        sum(r.duplicates for r in results),
        tuple(f for r in results for f in r.facts),
    )


async def _apply_partition(
    store: DocumentStore, tenant_id: str, day: str, facts: Sequence[Fact], ttl: int
) -> Applied:
    pending = sorted(facts, key=lambda f: (f.at, f.key))
    counted: list[Fact] = []
    duplicates = 0
    retries = 0
    while pending:
        if retries > MAX_ROUNDS:
            raise PreconditionFailed(f"rollups of {tenant_id} on {day} keep changing")
        chunk = _chunk(pending)
        writes = await _writes(store, tenant_id, day, chunk, ttl)
        try:
            await store.transact(ROLLUPS, writes)
        except BatchFailed as failed:
            if failed.index < len(chunk) and isinstance(failed.cause, Conflict):
                # A marker exists: that fact was counted already. Look up which of the
                # chunk's were (one query), drop those, and try the rest again.
                seen = await already_counted(store, chunk) | {chunk[failed.index].key}
                before = len(pending)
                pending = [f for f in pending if f.key not in seen]
                duplicates += before - len(pending)
                retries += 1
                continue
            if isinstance(failed.cause, Conflict | PreconditionFailed | NotFound):
                retries += 1
                continue  # a bucket moved on (another consumer): read it again
            raise
        counted.extend(chunk)
        pending = pending[len(chunk) :]
    return Applied(len(counted), duplicates, tuple(counted))


async def already_counted(store: DocumentStore, chunk: Sequence[Fact]) -> set[str]:
    """The keys of the chunk's facts (one tenant's, at most 100) whose markers exist."""
    ids = [marker_id(f) for f in chunk]
    page = await store.query(
        ROLLUPS, Query(scope=chunk[0].tenant_id, where=(Filter("id", "in", ids),), limit=len(ids))
    )
    return {doc["id"].split("|", 3)[3] for doc in page.items}


def _chunk(pending: Sequence[Fact]) -> list[Fact]:
    """The first facts whose markers and hour buckets fit one transaction."""
    chunk: list[Fact] = []
    hours: set[str] = set()
    for fact in pending:
        more = 0 if fact.hour in hours else 1
        if len(chunk) + len(hours) + 1 + more > MAX_TRANSACTION_WRITES:
            break
        chunk.append(fact)
        hours.add(fact.hour)
    return chunk


async def _writes(
    store: DocumentStore, tenant_id: str, day: str, chunk: Sequence[Fact], ttl: int
) -> list[Write]:
    """Each fact's marker, then its hour buckets with the chunk counted in."""
    hours = sorted({f.hour for f in chunk})
    found = await asyncio.gather(
        *(store.read(ROLLUPS, tenant_id, hour_id(tenant_id, day, hour)) for hour in hours)
    )
    stored = dict(zip(hours, found, strict=True))
    buckets = {hour: doc or new_bucket(tenant_id, day, hour) for hour, doc in stored.items()}
    by_hour: dict[str, list[Fact]] = {}
    for fact in chunk:
        by_hour.setdefault(fact.hour, []).append(fact)
    for hour, alike in by_hour.items():
        count_all(buckets[hour], alike)
    for bucket in buckets.values():
        bucket["ttl"] = ttl  # from this write: the tenant's retention as it is now
    writes = [Write("create", marker(fact)) for fact in chunk]
    for hour, doc in stored.items():
        bucket = buckets[hour]
        writes.append(
            Write("replace", bucket, etag=doc["_etag"]) if doc else Write("create", bucket)
        )
    return writes
