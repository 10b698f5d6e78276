"""Latency histograms that merge by addition: log-spaced bins from 10 ms to 72 h,
each 10% wider than the one before, so a percentile read from the bins is within
5% of the exact value (the bin's geometric middle is at most sqrt(1.1) - 1 = 4.9%
from either edge). "Within N seconds" is counted exactly beside the bins, for the
thresholds a dashboard asks about (THRESHOLDS).

A histogram is plain JSON, as a rollup bucket stores it: ``{"n": count, "ms":
total milliseconds, "bins": {"<index>": count}, "within": {"<seconds>": count}}``. Bin -1 holds
what is faster than 10 ms, bin BINS what is slower than 72 h.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any

LOWEST = 0.010
HIGHEST = 72 * 3600.0
RATIO = 1.1
BINS = math.ceil(math.log(HIGHEST / LOWEST) / math.log(RATIO))
THRESHOLDS = (1, 5, 10, 30, 60, 300, 3600)
"""Seconds for which "% within" is an exact count."""

_LOG_RATIO = math.log(RATIO)

Histogram = dict[str, Any]


def empty() -> Histogram:
    return {"n": 0, "ms": 0, "bins": {}, "within": {}}


def bin_of(seconds: float) -> int:
    """The bin a duration falls in (-1 below 10 ms, BINS past 72 h)."""
    if seconds < LOWEST:
        return -1
    if seconds >= HIGHEST:
        return BINS
    return min(BINS - 1, int(math.log(seconds / LOWEST) / _LOG_RATIO))


def bin_value(index: int) -> float:
    """What a bin stands for: the geometric middle of its edges."""
    if index < 0:
        return LOWEST / 2
    if index >= BINS:
        return HIGHEST
    return float(LOWEST * RATIO ** (index + 0.5))


def add(histogram: Histogram, seconds: float, count: int = 1) -> None:
    """Count ``count`` durations of ``seconds`` (negative ones count as 0)."""
    seconds = max(0.0, seconds)
    histogram["n"] = histogram.get("n", 0) + count
    # Whole milliseconds: integer sums do not depend on the order of the additions,
    # so a bucket recounted in another order (reconciliation) is equal, bit for bit.
    histogram["ms"] = histogram.get("ms", 0) + round(seconds * 1000) * count
    bins = histogram.setdefault("bins", {})
    key = str(bin_of(seconds))
    bins[key] = bins.get(key, 0) + count
    within = histogram.setdefault("within", {})
    for threshold in THRESHOLDS:
        if seconds <= threshold:
            within[str(threshold)] = within.get(str(threshold), 0) + count


def add_all(histogram: Histogram, durations: Iterable[float]) -> None:
    """``add`` for many durations at once (the same result)."""
    values = sorted(max(0.0, s) for s in durations)
    if not values:
        return
    histogram["n"] = histogram.get("n", 0) + len(values)
    histogram["ms"] = histogram.get("ms", 0) + sum(round(s * 1000) for s in values)
    bins = histogram.setdefault("bins", {})
    for seconds in values:
        key = str(bin_of(seconds))
        bins[key] = bins.get(key, 0) + 1
    within = histogram.setdefault("within", {})
    for threshold in THRESHOLDS:
        reached = bisect.bisect_right(values, threshold)
        if reached:
            within[str(threshold)] = within.get(str(threshold), 0) + reached


def merged(histograms: Iterable[Mapping[str, Any]]) -> Histogram:
    """One histogram counting what all of them count."""
    total = empty()
    for histogram in histograms:
        total["n"] += histogram.get("n", 0)
        total["ms"] += histogram.get("ms", 0)
        for part in ("bins", "within"):
            into = total[part]
            for key, count in histogram.get(part, {}).items():
                into[key] = into.get(key, 0) + count
    return total


def quantile(histogram: Mapping[str, Any], q: float) -> float | None:
    """The ``q`` quantile (0 < q ≤ 1, nearest rank) as the bins tell it; None if empty."""
    n = histogram.get("n", 0)
    if n <= 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index in sorted(int(k) for k in histogram.get("bins", {})):
        seen += histogram["bins"][str(index)]
        if seen >= rank:
            return bin_value(index)
    return bin_value(BINS)


def share_within(histogram: Mapping[str, Any], seconds: int) -> float | None:
    """The exact share of durations at most ``seconds`` (one of THRESHOLDS)."""
    if seconds not in THRESHOLDS:
        raise ValueError(f"'within' is counted for {', '.join(map(str, THRESHOLDS))} seconds")
    n = histogram.get("n", 0)
    if n <= 0:
        return None
    count = int(histogram.get("within", {}).get(str(seconds), 0))
    return count / int(n)
