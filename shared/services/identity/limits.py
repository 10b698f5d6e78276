"""A tenant's limits (its own, its ancestors', the platform's settings) and its
message quotas; the rate limits they set are counted in ``rates``.

**Quotas** (``OCM_QUOTA_MESSAGES_PER_DAY`` / ``…_PER_MONTH``, or the tenant's own):
each accepted message is reserved on a shared counter per tenant and UTC day or
month before anything is stored; a reservation past the quota is taken back and the
request refused, so quotas hold exactly across instances (a write per send, only
for tenants that have a quota).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.containers import COUNTERS
from shared.domain.errors import OcmError
from shared.domain.models import Document
from shared.services.deps import Deps


def platform_limits(deps: Deps) -> dict[str, float]:
    """The platform's settings, for every tenant that sets none of its own (read once
    per instance: this is on every request's path). Not to be changed by callers."""
    if not deps.platform_limits:
        s = deps.settings
        deps.platform_limits.update(
            requests_per_second=float(s.OCM_RATE_LIMIT_PER_SECOND),
            burst=float(s.OCM_RATE_LIMIT_BURST),
            tenant_requests_per_second=float(s.OCM_TENANT_RATE_LIMIT_PER_SECOND),
            tenant_burst=float(s.OCM_TENANT_RATE_LIMIT_BURST),
            messages_per_second=float(s.OCM_MESSAGE_RATE_PER_SECOND),
            message_burst=float(s.OCM_MESSAGE_RATE_BURST),
            messages_per_day=float(s.OCM_QUOTA_MESSAGES_PER_DAY),
            messages_per_month=float(s.OCM_QUOTA_MESSAGES_PER_MONTH),
        )
    return deps.platform_limits


def limits_of(deps: Deps, tenant: Document | None) -> dict[str, float]:
    """The tenant's limits, each falling back to the platform's setting."""
    own: dict[str, Any] = (tenant or {}).get("limits") or {}
    platform = platform_limits(deps)
    if not own:
        return platform
    return {name: float(own.get(name, value)) for name, value in platform.items()}


def limits_for(deps: Deps, lineage: list[Document]) -> dict[str, float]:
    """A tenant's limits from its lineage (``tenants.lineage``): its own, then where
    it sets none its nearest ancestor's, then the platform's settings. A child never
    gets more than it inherits by default."""
    if len(lineage) == 1:
        return limits_of(deps, lineage[0])
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
