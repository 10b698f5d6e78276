"""Small statistics helpers shared by the sections."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as OCM writes it (``…Z``, milliseconds)."""
    return datetime.fromisoformat(text)
