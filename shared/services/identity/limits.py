"""Rate limits per application and message quotas per tenant.

**Rate limits** (``OCM_RATE_LIMIT_PER_SECOND``, ``OCM_RATE_LIMIT_BURST``, or the
tenant's own ``limits``): a token bucket per application on each instance, which
smooths bursts exactly; and, because in Azure the HTTP function runs on many
instances, a shared counter per application and second in the store, which caps
the whole fleet at ``rate + burst`` a second. An instance adds its count to the
shared one every ``FLUSH_EVERY`` requests of a second (not on each: a store write per
request would double the cost of a send), so the fleet may overshoot by up to
``FLUSH_EVERY - 1`` requests per instance and second — the documented allowance.

**Quotas** (``OCM_QUOTA_MESSAGES_PER_DAY`` / ``…_PER_MONTH``, or the tenant's own):
each accepted message is reserved on a shared counter per tenant and UTC day or
month before anything is stored; a reservation past the quota is taken back and the
request refused, so quotas hold exactly across instances (a write per send, only
for tenants that have a quota).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.containers import COUNTERS
from shared.domain.errors import OcmError
from shared.domain.models import Document
from shared.services.deps import Deps

FLUSH_EVERY = 10


class TooManyRequests(OcmError):
    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"


def limits_of(deps: Deps, tenant: Document | None) -> dict[str, float]:
    """The tenant's limits, each falling back to the platform's setting."""
    own: dict[str, Any] = (tenant or {}).get("limits") or {}
    s = deps.settings
    return {
        "requests_per_second": float(own.get("requests_per_second", s.OCM_RATE_LIMIT_PER_SECOND)),
        "burst": float(own.get("burst", s.OCM_RATE_LIMIT_BURST)),
        "messages_per_day": float(own.get("messages_per_day", s.OCM_QUOTA_MESSAGES_PER_DAY)),
        "messages_per_month": float(own.get("messages_per_month", s.OCM_QUOTA_MESSAGES_PER_MONTH)),
    }


def limits_for(deps: Deps, lineage: list[Document]) -> dict[str, float]:
    """A tenant's limits from its lineage (``tenants.lineage``): its own, then where
    it sets none its nearest ancestor's, then the platform's settings. A child never
    gets more than it inherits by default."""
    merged: dict[str, Any] = {}
    for tenant in lineage:
        for name, value in (tenant.get("limits") or {}).items():
            merged.setdefault(name, value)
    return limits_of(deps, {"limits": merged})


def has_quota(deps: Deps, tenant: Document | None) -> bool:
    """Whether the tenant has a message quota at all (most have none)."""
    own = limits_of(deps, tenant)
    return own["messages_per_day"] > 0 or own["messages_per_month"] > 0


async def reserve_for_lineage(deps: Deps, lineage: list[Document], count: int) -> None:
    """Count messages against the quotas of a tenant and of every ancestor (a child's
    messages count against its parents' quotas too): all reservations, or none."""
    reserved: list[Document] = []
    try:
        for tenant in lineage:
            if has_quota(deps, tenant):
                await reserve_messages(deps, tenant, tenant["id"], count)
                reserved.append(tenant)
    except OcmError:
        for tenant in reserved:
            await release_messages(deps, tenant, tenant["id"], count)
        raise


@dataclass
class _Bucket:
    """An application's token bucket on this instance, and its view of the fleet."""

    tokens: float
    at: float
    window: int = -1
    shared: int = 0  # the fleet's count for ``window``, as last seen
    pending: int = 0  # this instance's requests in ``window`` not added yet


async def take(deps: Deps, tenant_id: str, app_id: str, limits: dict[str, float]) -> None:
    """Let one request of ``app_id`` (an application's id, or ``user:<id>``) through,
    or raise RATE_LIMITED (429)."""
    rate, burst = limits["requests_per_second"], max(1.0, limits["burst"])
    if rate <= 0:
        return
    now = deps.clock.now().timestamp()
    bucket = deps.rate_buckets.get(app_id)
    if bucket is None:
        bucket = deps.rate_buckets[app_id] = _Bucket(tokens=burst, at=now)
    bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
    bucket.at = now
    if bucket.tokens < 1:
        _refuse(limit=rate, burst=burst, wait=(1 - bucket.tokens) / rate)
    # The fleet: a shared count per second, added to every FLUSH_EVERY requests.
    second = int(now)
    if bucket.window != second:
        bucket.window, bucket.shared, bucket.pending = second, 0, 0
    if bucket.shared + bucket.pending + 1 > rate + burst:
        _refuse(limit=rate, burst=burst, wait=second + 1 - now)
    bucket.tokens -= 1
    bucket.pending += 1
    if bucket.pending >= FLUSH_EVERY:
        pending, bucket.pending = bucket.pending, 0
        bucket.shared = await deps.store.increment(
            COUNTERS, tenant_id, f"rate_{app_id}_{second}", "n", pending, ttl=120
        )


def _refuse(*, limit: float, burst: float, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    raise TooManyRequests(
        f"This application is over its rate limit ({limit:g} requests a second, bursts of "
        f"{burst:g}); retry after {seconds} s",
        headers={
            "Retry-After": str(seconds),
            "RateLimit-Limit": f"{limit:g}",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(seconds),
        },
    )


class QuotaExceeded(OcmError):
    status = 429
    code = "QUOTA_EXCEEDED"
    title = "Quota exceeded"


async def reserve_messages(deps: Deps, tenant: Document | None, tenant_id: str, count: int) -> None:
    """Count ``count`` messages against the tenant's daily and monthly quotas, or
    refuse them all (QUOTA_EXCEEDED) without keeping any of the reservation."""
    limits = limits_of(deps, tenant)
    now = deps.clock.now().astimezone(UTC)
    taken: list[str] = []
    for name, key, quota, ends in _periods(limits, now):
        counter = f"quota_{name}_{key}"
        total = await deps.store.increment(
            COUNTERS, tenant_id, counter, "n", count, ttl=40 * 86_400
        )
        taken.append(counter)
        if total > quota:
            for undo in taken:
                await deps.store.increment(COUNTERS, tenant_id, undo, "n", -count, ttl=40 * 86_400)
            wait = max(1, math.ceil((ends - now).total_seconds()))
            raise QuotaExceeded(
                f"This tenant's quota of {quota:g} messages a {name} is used up "
                f"({total - count:g} sent); it renews at {ends.isoformat()}",
                headers={"Retry-After": str(wait)},
            )


def _periods(limits: dict[str, float], now: datetime) -> list[tuple[str, str, float, datetime]]:
    """(name, key, quota, end) of each quota period in force."""
    periods = []
    if limits["messages_per_day"] > 0:
        tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        periods.append(("day", now.strftime("%Y-%m-%d"), limits["messages_per_day"], tomorrow))
    if limits["messages_per_month"] > 0:
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        next_month = datetime(year, month, 1, tzinfo=UTC)
        periods.append(("month", now.strftime("%Y-%m"), limits["messages_per_month"], next_month))
    return periods


async def release_messages(deps: Deps, tenant: Document | None, tenant_id: str, count: int) -> None:
    """Take back a reservation (a later check refused the messages)."""
    now = deps.clock.now().astimezone(UTC)
    for name, key, _, _ in _periods(limits_of(deps, tenant), now):
        await deps.store.increment(
            COUNTERS, tenant_id, f"quota_{name}_{key}", "n", -count, ttl=40 * 86_400
        )
