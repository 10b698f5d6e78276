"""Backoff for transient provider failures: exponential, capped, jittered."""

from __future__ import annotations

import random

MAX_RETRY_AFTER = 86_400.0
"""The longest wait anyone's Retry-After may impose (a day): the header comes from
whatever answers at a tenant-chosen URL, and later times would overflow dates."""


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    Half of the exponential step is kept and half is random ("equal jitter"), so
    retries spread out yet never come sooner than half the step; a provider's
    ``Retry-After`` is a floor.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = step / 2 + rng.random() * step / 2
    return max(delay, retry_after or 0.0)
