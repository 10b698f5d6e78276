"""bench.pricing: docs/cost.md's prices come from counted operations times published
unit charges; the arithmetic is checked here, the counts by `python -m bench.cost`."""

from __future__ import annotations

import pytest

from bench.pricing import priced, request_units


def test_request_units_follow_learns_size_table() -> None:
    ru = request_units({"create:messages": 1.0, "read:messages": 2.0, "query:webhooks": 1.0}, 1536)
    assert ru["create:messages"] == pytest.approx((4.95 + 6.29) / 2)  # halfway, 1 KB to 2 KB
    assert ru["read:messages"] == pytest.approx(2 * 1.02)
    assert ru["query:webhooks"] == 2.8


def test_a_price_is_the_sum_of_its_parts() -> None:
    result = {
        "batch": False,
        "message_document_bytes": 1024,
        "cosmos_operations_per_message": {"create:messages": 1.0, "increment:counters": 1.0},
        "service_bus_operations_total_per_message": 6.0,
    }
    usd = priced(result)["usd_per_million"]
    assert usd["cosmos_db"] == pytest.approx(round(2 * 4.95 * 0.25, 2))
    assert usd["service_bus_by_monthly_volume"] == {"13M-100M ops a month": 4.8, "100M-2,500M": 3.0}
    total = usd["cosmos_db"] + 4.8 + usd["functions"]
    assert usd["total_by_service_bus_band"]["13M-100M ops a month"] == pytest.approx(
        total, abs=0.01
    )
