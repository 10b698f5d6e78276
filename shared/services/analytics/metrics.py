"""The rollups' counters as OpenTelemetry metrics, so they reach Application Insights
with the rest of the telemetry (``telemetry.configure`` sets up the SDK).

One counter per transition, ``ocm.messages.<transition>`` (``ocm.messages.delivered``,
…), added to once per fact the rollups counted (never for a duplicate), with the
attributes ``ocm.tenant_id``, ``ocm.channel_type``, ``ocm.provider`` and ``ocm.status``
(the transition). Without an SDK the OpenTelemetry API does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Meter

from shared.domain.facts import TRANSITIONS, Fact

_counters: dict[int, dict[str, Counter]] = {}


def counters(meter: Meter) -> dict[str, Counter]:
    """Each transition's counter on ``meter`` (made once per meter)."""
    made = _counters.get(id(meter))
    if made is None:
        made = {
            t: meter.create_counter(
                f"ocm.messages.{t}", unit="{message}", description=f"Messages {t}, counted once"
            )
            for t in TRANSITIONS
        }
        _counters[id(meter)] = made
    return made


def record(facts: Iterable[Fact], meter: Meter | None = None) -> None:
    """Add the counted facts to their counters."""
    by_transition = counters(meter or metrics.get_meter("ocm"))
    for fact in facts:
        by_transition[fact.transition].add(
            1,
            {
                "ocm.tenant_id": fact.tenant_id,
                "ocm.channel_type": fact.dims.get("channel_type", ""),
                "ocm.provider": fact.dims.get("provider", ""),
                "ocm.status": fact.transition,
            },
        )
