"""Failed authentications, counted per source address on each instance: past a burst,
a source that keeps presenting bad credentials is answered 429 before anything is
looked up. Keys and secrets are too long to guess; this bounds what guessing costs.

A source holds ``FAILURE_BURST`` failures, refilled at ``FAILURES_PER_SECOND``; its
valid requests pass as long as it has some left (an honest client behind the same
address as a guesser may be refused too, for the seconds the refill takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.services.deps import Deps
from shared.services.identity.rates import TooManyRequests

FAILURES_PER_SECOND = 5.0
FAILURE_BURST = 50.0
MAX_SOURCES = 10_000


@dataclass
class _Source:
    tokens: float
    at: float


def admit(deps: Deps, address: str | None) -> None:
    """Let a request of ``address`` be authenticated, or refuse it (RATE_LIMITED)."""
    source = deps.failed_sources.get(address or "")
    if source is None:
        return
    now = deps.clock.now().timestamp()
    tokens = min(FAILURE_BURST, source.tokens + (now - source.at) * FAILURES_PER_SECOND)
    if tokens < 1:
        wait = max(1, math.ceil((1 - tokens) / FAILURES_PER_SECOND))
        raise TooManyRequests(
            f"Too many failed authentications from this address; retry after {wait} s",
            headers={"Retry-After": str(wait)},
        )


def failed(deps: Deps, address: str | None) -> None:
    """Count a failed authentication of ``address``."""
    key = address or ""
    now = deps.clock.now().timestamp()
    source = deps.failed_sources.get(key)
    if source is None:
        if len(deps.failed_sources) >= MAX_SOURCES:
            deps.failed_sources.clear()  # a flood of addresses: start over, not grow
        source = deps.failed_sources[key] = _Source(FAILURE_BURST, now)
    source.tokens = min(FAILURE_BURST, source.tokens + (now - source.at) * FAILURES_PER_SECOND)
    source.at = now
    source.tokens -= 1
