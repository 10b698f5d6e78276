"""bench.pricing: docs/cost.md's prices come from counted operations times published
unit charges; the arithmetic is checked here, the counts by `python -m bench.cost`."""

from __future__ import annotations

import pytest

from bench.pricing import priced, priced_provisioned, request_units


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


def test_the_provisioned_tier_spreads_its_hourly_charges_over_the_hours_messages() -> None:
    result = {
        "batch": False,
        "message_document_bytes": 1024,
        # 4.95 + 2 x 1.00 = 6.95 RU on messages, 4.95 on counters, 1.00 on channels.
        "cosmos_operations_per_message": {
            "create:messages": 1.0,
            "read:messages": 2.0,
            "increment:counters": 1.0,
            "read:channels": 1.0,
        },
        "service_bus_operations_total_per_message": 6.0,
    }
    tier = {
        "hot_max": {"messages": 4000, "counters": 1000},
        "shared_max": 1000,
        "messaging_units": 2,
    }
    # 100 messages/s: messages uses 695 RU/s (its floor is 400), counters 495 (floor
    # 100), the shared rest 100 (floor 100): 1,290 RU/s billed for the hour.
    busy = priced_provisioned(result, 100, tier)
    assert busy["cosmos_billed_request_units_per_second"] == 1290
    millions = 100 * 3600 / 1e6
    assert busy["usd_per_million"]["cosmos_db"] == pytest.approx(round(12.90 * 0.012 / millions, 2))
    assert busy["usd_per_million"]["service_bus"] == pytest.approx(round(2 * 0.928 / millions, 2))
    # Idle, autoscale still bills 10% of each maximum, and the units their hours.
    assert busy["usd_per_month_idle"] == pytest.approx(round((600 / 100 * 0.012 + 1.856) * 730, 2))
    # Past a container's maximum it is throttled, not billed more.
    flooded = priced_provisioned(result, 10_000, tier)
    assert flooded["cosmos_billed_request_units_per_second"] == 6000
    # The busier, the cheaper each message (fixed hourly charges).
    quiet = priced_provisioned(result, 10, tier)
    assert quiet["usd_per_million"]["total"] > busy["usd_per_million"]["total"]


def test_a_transaction_is_priced_by_its_operations_not_twice() -> None:
    ru = request_units({"transact:rollups": 1.0, "create:rollups": 3.0}, 1024)
    assert ru == {"create:rollups": pytest.approx(3 * 4.95)}
