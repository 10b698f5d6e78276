"""Latency histograms: percentiles from merged log-spaced bins within 5% of the
exact value on a million samples; "% within N s" an exact count."""

from __future__ import annotations

import math
import random

import pytest

from shared.services.analytics import histogram as h


def exact_quantile(ordered: list[float], q: float) -> float:
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_percentiles_of_a_million_samples_are_within_five_percent() -> None:
    rng = random.Random(15)
    # Latencies from 10 ms to hours: a log-normal body and a long tail.
    samples = [
        min(h.HIGHEST * 0.99, max(h.LOWEST, rng.lognormvariate(0.5, 2.0))) for _ in range(1_000_000)
    ]
    parts = [h.empty() for _ in range(8)]
    for i, seconds in enumerate(samples):
        h.add(parts[i % 8], seconds)
    total = h.merged(parts)  # as buckets of several hours are read together
    assert total["n"] == len(samples)
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = h.quantile(total, q)
        exact = exact_quantile(ordered, q)
        assert estimate is not None
        assert abs(estimate - exact) / exact <= 0.05, (q, estimate, exact)
    for threshold in h.THRESHOLDS:
        exact_share = sum(1 for s in samples if s <= threshold) / len(samples)
        assert h.share_within(total, threshold) == exact_share


def test_every_value_of_the_range_is_within_five_percent_of_its_bin() -> None:
    value = h.LOWEST
    while value < h.HIGHEST:
        represented = h.bin_value(h.bin_of(value))
        assert abs(represented - value) / value <= 0.05, value
        value *= 1.013


def test_merging_is_adding() -> None:
    a, b = h.empty(), h.empty()
    h.add(a, 0.2)
    h.add(b, 0.2, count=3)
    h.add(b, 7200)
    total = h.merged([a, b])
    assert total["n"] == 5 and total["ms"] == 800 + 7_200_000
    assert total["bins"][str(h.bin_of(0.2))] == 4
    assert h.share_within(total, 1) == 4 / 5
    assert h.merged([]) == h.empty()


def test_out_of_range_and_empty() -> None:
    histogram = h.empty()
    assert h.quantile(histogram, 0.5) is None and h.share_within(histogram, 10) is None
    h.add(histogram, 0.001)
    h.add(histogram, 10 * 24 * 3600.0)
    h.add(histogram, -3)  # a clock that stepped back: 0
    assert histogram["bins"]["-1"] == 2 and histogram["bins"][str(h.BINS)] == 1
    assert h.quantile(histogram, 1.0) == h.HIGHEST
    with pytest.raises(ValueError, match="within"):
        h.share_within(histogram, 7)
