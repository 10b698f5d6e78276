"""The price of one million delivered messages, from the operations `bench.cost`
counted: each count times a published unit charge and a list price. Every figure
that is not counted is an assumption named here, so docs/cost.md can show its method.

Request units: Learn, "Understand request unit consumption" (document size table:
a point read of 1 KB is 1.00 RU and of 2 KB 1.04; a write of 1 KB 4.95 RU and of
2 KB 6.29), interpolated at the document's measured size; a query, at least the
~2.8 RU every query costs (an estimate). Our containers index 6-8 paths, not every
property as the table's documents do, so the write charges are an upper bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

READ_RU = ((1024, 1.00), (2048, 1.04), (4096, 1.14))
WRITE_RU = ((1024, 4.95), (2048, 6.29), (4096, 6.67))
QUERY_RU = 2.8
SMALL_DOCUMENT = 512  # a counter, the directory's entries

COSMOS_SERVERLESS_PER_MILLION_RU = 0.25
SERVICE_BUS_STANDARD_PER_MILLION_OPS = {"13M-100M ops a month": 0.80, "100M-2,500M": 0.50}
FUNCTIONS_PER_MILLION_EXECUTIONS = 0.40
FUNCTIONS_PER_GB_SECOND = 0.000026
INSTANCE_GB = 2.0  # function_instance_memory_in_mb = 2048
CONCURRENT_PER_INSTANCE = 16  # maxConcurrentCalls, HTTP concurrency
SECONDS_HELD = {"intake": 0.02, "dispatch": 0.3, "receipt": 0.02}
"""Assumed time an execution holds its slot: dispatch waits on the provider."""

# scale_tier = "provisioned" (infra/scale.tf). Autoscale throughput is billed each
# hour for the highest RU/s it scaled to, never below 10% of its maximum, at 1.5x
# the manual rate of $0.008 per 100 RU/s-hour (single-region writes); a Premium
# messaging unit by the hour, whatever the operations.
COSMOS_AUTOSCALE_PER_100_RUS_HOUR = 0.012
AUTOSCALE_FLOOR = 0.10
SERVICE_BUS_PREMIUM_PER_UNIT_HOUR = 0.928
PROVISIONED_DEFAULTS: Mapping[str, Any] = {
    "hot_max": {"messages": 8000, "counters": 1000, "rollups": 6000},
    "shared_max": 1000,
    "messaging_units": 1,
}


def _interpolated(table: tuple[tuple[int, float], ...], size: int) -> float:
    if size <= table[0][0]:
        return table[0][1]
    for (low, low_ru), (high, high_ru) in itertools.pairwise(table):
        if size <= high:
            return low_ru + (high_ru - low_ru) * (size - low) / (high - low)
    return table[-1][1]


def request_units(operations: Mapping[str, float], document_bytes: int) -> dict[str, float]:
    """RU per message by operation kind (``create:messages`` …)."""
    units = {}
    for key, count in operations.items():
        kind, container = key.split(":", 1)
        if kind == "transact":
            continue  # its operations are counted by kind beside it
        size = document_bytes if container == "messages" else SMALL_DOCUMENT
        if kind == "query":
            each = QUERY_RU
        elif kind == "read":
            each = _interpolated(READ_RU, size)
        else:  # create, replace, patch, increment, upsert, delete
            each = _interpolated(WRITE_RU, size)
        units[key] = round(count * each, 3)
    return units


def _functions_per_million(batch: bool) -> float:
    """Flex Consumption on demand: executions and GB-seconds (the same on both tiers)."""
    executions = (1 / 1000 if batch else 1.0) + 2.0  # intake, dispatch, receipt
    held = SECONDS_HELD["dispatch"] + SECONDS_HELD["receipt"]
    held += SECONDS_HELD["intake"] / (1000 if batch else 1)
    gb_seconds = held / CONCURRENT_PER_INSTANCE * INSTANCE_GB
    return (
        executions * FUNCTIONS_PER_MILLION_EXECUTIONS + gb_seconds * FUNCTIONS_PER_GB_SECOND * 1e6
    )


def priced(result: Mapping[str, Any]) -> dict[str, Any]:
    """USD per million delivered messages on the serverless tier, by part."""
    ru = request_units(result["cosmos_operations_per_message"], result["message_document_bytes"])
    ru_total = sum(ru.values())
    service_bus_ops = result["service_bus_operations_total_per_message"]
    cosmos = ru_total * COSMOS_SERVERLESS_PER_MILLION_RU
    functions = _functions_per_million(result["batch"])
    service_bus = {
        band: round(service_bus_ops * price, 2)
        for band, price in SERVICE_BUS_STANDARD_PER_MILLION_OPS.items()
    }
    return {
        "request_units_per_message": round(ru_total, 2),
        "request_units_by_operation": ru,
        "usd_per_million": {
            "cosmos_db": round(cosmos, 2),
            "service_bus_by_monthly_volume": service_bus,
            "functions": round(functions, 2),
            "total_by_service_bus_band": {
                band: round(cosmos + sb + functions, 2) for band, sb in service_bus.items()
            },
        },
        "assumed": {
            "seconds_held": SECONDS_HELD,
            "instance_gb": INSTANCE_GB,
            "concurrent_per_instance": CONCURRENT_PER_INSTANCE,
        },
    }


def request_units_by_container(ru: Mapping[str, float]) -> dict[str, float]:
    """RU per message on each container (``messages``, ``counters``...)."""
    by_container: dict[str, float] = {}
    for key, units in ru.items():
        container = key.split(":", 1)[1]
        by_container[container] = by_container.get(container, 0.0) + units
    return by_container


def priced_provisioned(
    result: Mapping[str, Any],
    messages_per_second: float,
    tier: Mapping[str, Any] = PROVISIONED_DEFAULTS,
) -> dict[str, Any]:
    """USD per million delivered messages on the provisioned tier at a steady load:
    the hour's autoscale and messaging-unit charges spread over the hour's messages,
    plus the functions' own (per message). ``tier`` holds infra's variables
    (``hot_max`` by container, ``shared_max``, ``messaging_units``)."""
    ru = request_units(result["cosmos_operations_per_message"], result["message_document_bytes"])
    by_container = request_units_by_container(ru)
    hot_max: Mapping[str, int] = tier["hot_max"]
    shared = sum(u for c, u in by_container.items() if c not in hot_max)
    budgets = [(by_container.get(c, 0.0), m) for c, m in hot_max.items()]
    budgets.append((shared, tier["shared_max"]))
    billed = sum(_autoscale_billed(ru * messages_per_second, m) for ru, m in budgets)
    idle = sum(_autoscale_billed(0.0, m) for _, m in budgets)
    per_hour_cosmos = billed / 100 * COSMOS_AUTOSCALE_PER_100_RUS_HOUR
    per_hour_service_bus = tier["messaging_units"] * SERVICE_BUS_PREMIUM_PER_UNIT_HOUR
    millions_an_hour = messages_per_second * 3600 / 1e6
    cosmos = per_hour_cosmos / millions_an_hour
    service_bus = per_hour_service_bus / millions_an_hour
    functions = _functions_per_million(result["batch"])
    return {
        "messages_per_second": messages_per_second,
        "cosmos_billed_request_units_per_second": round(billed),
        "usd_per_million": {
            "cosmos_db": round(cosmos, 2),
            "service_bus": round(service_bus, 2),
            "functions": round(functions, 2),
            "total": round(cosmos + service_bus + functions, 2),
        },
        "usd_per_month_idle": round(
            (idle / 100 * COSMOS_AUTOSCALE_PER_100_RUS_HOUR + per_hour_service_bus) * 730, 2
        ),
    }


def _autoscale_billed(used: float, maximum: float) -> float:
    """The RU/s an autoscale budget bills for an hour at ``used``: what it scaled to,
    never below 10% of its maximum, never above it (the rest is throttled)."""
    return max(AUTOSCALE_FLOOR * maximum, min(used, maximum))
