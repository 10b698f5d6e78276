"""Reconciliation: each closed hour of each tenant recounted from the message store.

The store is the truth: every transition is on its message's timeline before its
event is published. A message with a transition in hour H was written at or after
H (``updated_at``) and created before H ends, so one query finds them all. Their
facts in H make the hour's true bucket; a stored bucket that differs is
overwritten, and the difference (the drift) is logged, counted as a metric and
published as an ``analytics.drift`` event (the events log takes it).

Before the bucket is overwritten, every true fact gets its marker: an event still
on its way for one of them then finds it counted and is dropped, so a repaired hour
cannot be counted twice. A consumer counting into the hour meanwhile moves the
bucket's etag, and the hour is recounted.

Where the events went out and were counted, the drift is 0. It is not when an event
was lost between a message's write and its publication (analytics events are not
swept: ``publish.guaranteed``), dead-lettered, or a bucket was damaged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import metrics

from shared.containers import MESSAGES, ROLLUPS, TENANTS
from shared.domain.facts import Fact, facts_of
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import (
    MAX_TRANSACTION_WRITES,
    SYSTEM,
    BatchFailed,
    Conflict,
    Filter,
    PreconditionFailed,
    Query,
    Write,
)
from shared.services.analytics import compact, retention, rollup
from shared.services.deps import Deps
from shared.services.events.publish import publish_platform_event

log = logging.getLogger(__name__)

CLOSED_AFTER = timedelta(minutes=10)
"""An hour is recounted once it ended this long ago (no write is that late)."""
MAX_HOURS = 48
"""Hours a tenant catches up on per run at most (the rest on the next runs)."""
TRIES = 5
PAGE = 1000
_drift = metrics.get_meter("ocm").create_counter(
    "ocm.analytics.drift", unit="{fact}", description="Facts a reconciliation corrected"
)


@dataclass(frozen=True, slots=True)
class Reconciled:
    hours: int
    repaired: int
    drift: int


def hour_text(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


def _state_id(tenant_id: str) -> str:
    return f"state|{tenant_id}|reconciled"


TERMINAL = ("delivered", "failed", "expired", "cancelled")
"""A message's outcome: the first of these on its timeline (``read`` counts as delivered)."""


def outcome(facts: Sequence[Fact]) -> str:
    """What became of a message, from its facts: a TERMINAL transition or pending."""
    for fact in sorted(facts, key=lambda f: f.at):
        if fact.transition in TERMINAL or fact.transition == "read":
            return "delivered" if fact.transition == "read" else fact.transition
    return "pending"


def cohort_of(messages: Sequence[Sequence[Fact]], as_of: datetime) -> dict[str, Any]:
    """The hour's cohort (the outbound messages accepted in it) as it stands: how many
    were sent, delivered, read, and what became of each, so that delivered + failed +
    expired + cancelled + pending = accepted, and accepted ≥ sent ≥ delivered ≥ read."""
    cohort: dict[str, Any] = dict.fromkeys(("accepted", "sent", "read", *TERMINAL, "pending"), 0)
    for facts in messages:
        reached = {f.transition for f in facts}
        cohort["accepted"] += 1
        cohort["sent"] += 1 if reached & {"sent", "delivered", "read"} else 0
        cohort["read"] += 1 if "read" in reached else 0
        cohort[outcome(facts)] += 1
    cohort["as_of"] = to_utc_text(as_of)
    return cohort


async def true_facts(
    deps: Deps, tenant_id: str, hour: datetime
) -> tuple[list[Fact], list[list[Fact]]]:
    """The tenant's facts in ``hour`` (UTC, on the hour), and the facts of each
    outbound message accepted in it, from the message store."""
    where = (
        Filter("updated_at", "gte", to_utc_text(hour)),
        Filter("created_at", "lt", to_utc_text(hour + timedelta(hours=1))),
    )
    wanted = hour_text(hour)
    found: list[Fact] = []
    cohort: list[list[Fact]] = []
    cursor: str | None = None
    while True:
        page = await deps.store.query(MESSAGES, Query(tenant_id, where, limit=PAGE, cursor=cursor))
        for doc in page.items:
            facts = facts_of(doc)
            found.extend(f for f in facts if f.hour == wanted)
            accepted = [f for f in facts if f.transition == "accepted"]
            if accepted and accepted[0].hour == wanted:
                cohort.append(facts)
        cursor = page.next_cursor
        if cursor is None:
            return found, cohort


def differences(stored: Mapping[str, Any] | None, true: Mapping[str, Any]) -> list[str]:
    """Where two buckets of one hour differ. A dimension (or the tags) where either
    keeps ``other`` is compared by its totals only: which values a bucket keeps by
    name depends on the order it saw them in (the first MAX_VALUES), not on the truth."""
    a, b = stored or {}, true
    found = [p for p in ("counts", "usage", "latency") if (a.get(p) or {}) != (b.get(p) or {})]
    for part in ("by", "latency_by"):
        left, right = a.get(part) or {}, b.get(part) or {}
        for dimension in sorted({*left, *right}):
            if not _same_values(left.get(dimension) or {}, right.get(dimension) or {}):
                found.append(f"{part}.{dimension}")
    if not _same_values(a.get("tags") or {}, b.get("tags") or {}):
        found.append("tags")
    return found


def _same_values(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    if rollup.OTHER not in left and rollup.OTHER not in right:
        return left == right
    return _totals(left) == _totals(right)


def _totals(values: Mapping[str, Any]) -> dict[str, int]:
    """Counts per transition over all values (histograms: their sizes)."""
    total: dict[str, int] = {}
    for per_value in values.values():
        for key, count in per_value.items():
            n = count.get("n", 0) if isinstance(count, Mapping) else count
            total[key] = total.get(key, 0) + int(n)
    return total


def drift_of(stored: Document | None, true: Document) -> int:
    """How many counts differ (at least 1 when anything else does; 0: the same)."""
    counts = (stored or {}).get("counts") or {}
    differ = sum(
        abs(int(counts.get(t, 0)) - int(true["counts"].get(t, 0)))
        for t in {*counts, *true["counts"]}
    )
    return differ or (1 if differences(stored, true) else 0)


async def _mark(deps: Deps, facts: Sequence[Fact]) -> None:
    """Create the markers of ``facts`` that do not exist yet."""
    for start in range(0, len(facts), MAX_TRANSACTION_WRITES):
        chunk = facts[start : start + MAX_TRANSACTION_WRITES]
        for _ in range(TRIES):
            seen = await rollup.already_counted(deps.store, chunk)
            missing = [f for f in chunk if f.key not in seen]
            if not missing:
                break
            writes = [Write("create", rollup.marker(f)) for f in missing]
            try:
                await deps.store.transact(ROLLUPS, writes)
                break
            except BatchFailed as failed:
                if not isinstance(failed.cause, Conflict):
                    raise  # a marker made meanwhile (a consumer): look again


async def reconcile_hour(deps: Deps, tenant_id: str, hour: datetime) -> int:
    """Recount one hour; returns its drift (0: the bucket was right)."""
    day = hour.date().isoformat()
    bucket_id = rollup.hour_id(tenant_id, day, hour_text(hour))
    for _ in range(TRIES):
        stored = await deps.store.read(ROLLUPS, tenant_id, bucket_id)
        facts, accepted = await true_facts(deps, tenant_id, hour)
        true = rollup.new_bucket(tenant_id, day, hour_text(hour))
        true["ttl"] = (await retention.of(deps, tenant_id)).hour_days * 86_400
        rollup.count_all(true, facts)
        drift = drift_of(stored, true)
        if accepted:
            true["cohort"] = cohort_of(accepted, deps.clock.now())
        if not drift:
            if stored is None or not accepted:
                return 0
            true = {**stored, "cohort": true["cohort"], "ttl": true["ttl"]}  # counts right
        else:
            await _mark(deps, facts)
        try:
            if stored is None:
                await deps.store.create(ROLLUPS, true)
            else:
                await deps.store.replace(ROLLUPS, true, etag=stored["_etag"])
        except (Conflict, PreconditionFailed):
            continue  # a consumer counted into the hour meanwhile: recount
        if drift:
            await _report(deps, tenant_id, hour, drift, stored, true)
        return drift
    raise PreconditionFailed(f"the hour {hour_text(hour)} of {tenant_id} keeps changing")


async def _report(
    deps: Deps, tenant_id: str, hour: datetime, drift: int, stored: Document | None, true: Document
) -> None:
    was = (stored or {}).get("counts") or {}
    log.warning(
        "analytics drift: tenant %s hour %s: %d corrected (was %s, is %s)",
        tenant_id,
        hour_text(hour),
        drift,
        was,
        true["counts"],
    )
    _drift.add(drift, {"ocm.tenant_id": tenant_id})
    await publish_platform_event(
        deps,
        tenant_id,
        "analytics.drift",
        {"hour": to_utc_text(hour), "drift": drift, "was": was, "is": true["counts"]},
        event_id=f"evt_drift_{tenant_id}_{hour_text(hour)}_{deps.clock.now().timestamp():.0f}",
    )


def last_closed_hour(now: datetime) -> datetime:
    return (now - CLOSED_AFTER).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


async def reconcile_tenant(deps: Deps, tenant_id: str) -> Reconciled:
    """The tenant's closed hours since its last reconciliation (at most MAX_HOURS)."""
    last = last_closed_hour(deps.clock.now())
    state = await deps.store.read(ROLLUPS, tenant_id, _state_id(tenant_id))
    through = datetime.fromisoformat(state["through"]) if state else last - timedelta(hours=1)
    hours = repaired = drift = 0
    hour = max(through + timedelta(hours=1), last - timedelta(hours=MAX_HOURS - 1))
    while hour <= last:
        found = await reconcile_hour(deps, tenant_id, hour)
        hours += 1
        repaired += 1 if found else 0
        drift += found
        hour += timedelta(hours=1)
    if hours:
        mark = {
            **(state or {}),
            "id": _state_id(tenant_id),
            "tenant_id": tenant_id,
            "partition": "state",
            "kind": "state",
            "through": to_utc_text(last),
        }
        mark = await compact.compact(deps, tenant_id, mark, last)
        mark.pop("_etag", None)
        await deps.store.upsert(ROLLUPS, mark)
    return Reconciled(hours, repaired, drift)


async def run(deps: Deps) -> Reconciled:
    """Every tenant's closed hours (the timer)."""
    total = Reconciled(0, 0, 0)
    cursor: str | None = None
    while True:
        page = await deps.store.query(TENANTS, Query(SYSTEM, limit=PAGE, cursor=cursor))
        for tenant in page.items:
            done = await reconcile_tenant(deps, tenant["id"])
            total = Reconciled(
                total.hours + done.hours, total.repaired + done.repaired, total.drift + done.drift
            )
        cursor = page.next_cursor
        if cursor is None:
            return total
