"""Rate limits, counted: per application, per tenant across its applications, and per
tenant in messages (a batch counts as many as it holds).

Each is a token bucket on each instance, which smooths bursts exactly; and, because in
Azure the HTTP function runs on many instances, a shared counter per bucket and second
in the store, which caps the whole fleet at ``rate + burst`` a second. An instance adds
its count to the shared one every ``flush_every(rate, burst)`` units of a second — 10,
or 1 % of ``rate + burst`` where that is more (not on each: a store write per request
would double the cost of a send) — so the fleet may overshoot by up to that less one
per instance and second: the documented allowance.

- **Per application** (``OCM_RATE_LIMIT_PER_SECOND``, ``OCM_RATE_LIMIT_BURST``): one
  request, one unit.
- **Per tenant** (``OCM_TENANT_RATE_LIMIT_PER_SECOND``, ``…_BURST``): every request of
  every application and user of the tenant, so adding applications does not multiply
  its rate.
- **Messages per tenant** (``OCM_MESSAGE_RATE_PER_SECOND``, ``…_BURST``): each accepted
  message is a unit, a batch of 1000 a thousand.

A child tenant's requests and messages count against an ancestor's too when that
ancestor's limits say ``children_count`` (the parent's choice: its children then share
its ceilings, whatever their own say).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.containers import COUNTERS
from shared.domain.errors import OcmError
from shared.domain.models import Document
from shared.services.deps import Deps
from shared.services.identity.limits import limits_for

FLUSH_EVERY = 10


def flush_every(rate: float, burst: float) -> int:
    """How many units an instance counts before it adds them to the fleet's count."""
    return max(FLUSH_EVERY, int((rate + burst) / 100))


class TooManyRequests(OcmError):
    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"


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
    now = deps.clock.now().timestamp()
    rate, burst = limits["requests_per_second"], limits["burst"]
    await _take(deps, tenant_id, app_id, rate, burst, 1, now, _APPLICATION)


async def take_request(deps: Deps, lineage: list[Document], caller_id: str) -> None:
    """Count one request of ``caller_id`` against its own rate and its tenant's
    (``lineage[0]``'s, and each ancestor's that counts its children's)."""
    limits = limits_for(deps, lineage)
    now = deps.clock.now().timestamp()
    home = lineage[0]["id"]
    rate, burst = limits["requests_per_second"], limits["burst"]
    await _take(deps, home, caller_id, rate, burst, 1, now, _APPLICATION)
    await _for_tenants(deps, lineage, limits, "requests", 1, now)


async def take_messages(deps: Deps, lineage: list[Document], count: int) -> None:
    """Count ``count`` messages against the tenant's message rate (and each ancestor's
    that counts its children's)."""
    now = deps.clock.now().timestamp()
    await _for_tenants(deps, lineage, limits_for(deps, lineage), "messages", count, now)


_APPLICATION = "This application is over its rate limit"
_TENANT_RATES = {  # the limit's names, the bucket's key, who is over it: the tenant, a parent
    "requests": (
        "tenant_requests_per_second",
        "tenant_burst",
        "tenant:",
        "This tenant is over its rate limit",
        "This tenant's parent (counting its children) is over its rate limit",
    ),
    "messages": (
        "messages_per_second",
        "message_burst",
        "messages:",
        "This tenant is over its message rate limit",
        "This tenant's parent (counting its children) is over its message rate limit",
    ),
}


async def _for_tenants(
    deps: Deps,
    lineage: list[Document],
    limits: dict[str, float],
    kind: str,
    cost: int,
    now: float,
) -> None:
    rate, burst, prefix, who, parent = _TENANT_RATES[kind]
    home = lineage[0]["id"]
    await _take(deps, home, prefix + home, limits[rate], limits[burst], cost, now, who)
    for depth in range(1, len(lineage)):
        ancestor = lineage[depth]
        if (ancestor.get("limits") or {}).get("children_count"):
            own = limits_for(deps, lineage[depth:])
            key = prefix + ancestor["id"]
            await _take(deps, ancestor["id"], key, own[rate], own[burst], cost, now, parent)


async def _take(
    deps: Deps,
    tenant_id: str,
    key: str,
    rate: float,
    burst: float,
    cost: int,
    now: float,
    who: str,
) -> None:
    """Take ``cost`` units from the bucket ``key`` (``rate`` a second, ``burst`` at
    once; a rate of 0: no limit), or raise RATE_LIMITED (429)."""
    if rate <= 0:
        return
    burst = max(1.0, burst)
    bucket = deps.rate_buckets.get(key)
    if bucket is None:
        bucket = deps.rate_buckets[key] = _Bucket(tokens=burst, at=now)
    tokens = bucket.tokens + (now - bucket.at) * rate if now > bucket.at else bucket.tokens
    bucket.tokens, bucket.at = (tokens if tokens < burst else burst), now
    if bucket.tokens < cost:
        _refuse(who, limit=rate, burst=burst, wait=(cost - bucket.tokens) / rate)
    # The fleet: a shared count per second, added to every flush_every(rate, burst) units.
    second = int(now)
    if bucket.window != second:
        bucket.window, bucket.shared, bucket.pending = second, 0, 0
    if bucket.shared + bucket.pending + cost > rate + burst:
        _refuse(who, limit=rate, burst=burst, wait=second + 1 - now)
    bucket.tokens -= cost
    bucket.pending += cost
    if bucket.pending >= flush_every(rate, burst):
        pending, bucket.pending = bucket.pending, 0
        bucket.shared = await deps.store.increment(
            COUNTERS, tenant_id, f"rate_{key}_{second}", "n", pending, ttl=120
        )


def _refuse(who: str, *, limit: float, burst: float, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    raise TooManyRequests(
        f"{who} ({limit:g} a second, bursts of {burst:g}); retry after {seconds} s",
        headers={
            "Retry-After": str(seconds),
            "RateLimit-Limit": f"{limit:g}",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(seconds),
        },
    )
