"""The analytics subscription's consumer: a batch of message events counted into the
rollups exactly once (``rollup.apply``), whatever the batch holds.

An event that cannot be read, or that analytics does not count, is skipped with a
warning rather than failing its batch: redelivering it could never succeed, and it
would take the rest of the batch with it to the dead-letter queue. The hourly
reconciliation recounts each closed hour from the message store either way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from shared import telemetry
from shared.domain.facts import Fact, fact_from_event
from shared.services.analytics import metrics, retention, rollup, thresholds
from shared.services.deps import Deps
from shared.services.events import facts_out

log = logging.getLogger(__name__)


def facts(bodies: Sequence[bytes]) -> tuple[list[Fact], int]:
    """The facts of a batch of event bodies, and how many bodies were skipped."""
    found: list[Fact] = []
    skipped = 0
    for body in bodies:
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = None
        # One event, or the many an analytics.facts message gathers.
        events = (facts_out.events_of(event) or [event]) if isinstance(event, dict) else [None]
        for one in events:
            try:
                fact = fact_from_event(one) if isinstance(one, dict) else None
            except (ValueError, TypeError, KeyError):
                fact = None
            if fact is None:
                skipped += 1
            else:
                found.append(fact)
    if skipped:
        log.warning(
            "analytics skipped %d of %d events (unreadable or not counted)", skipped, len(bodies)
        )
    return found, skipped


async def count(deps: Deps, bodies: Sequence[bytes]) -> rollup.Applied:
    """Count a batch of events; raises (the batch is redelivered) only when the store
    fails, and then counts nothing twice on the redelivery."""
    found, _ = facts(bodies)
    ttls = {}
    for tenant_id in {f.tenant_id for f in found}:
        ttls[tenant_id] = (await retention.of(deps, tenant_id)).hour_days * 86_400
    with telemetry.span("analytics.count", events=len(bodies)):
        applied = await rollup.apply(deps.store, found, ttls)
    metrics.record(applied.facts)
    if applied.facts:
        try:
            await thresholds.check(deps, (f.tenant_id for f in applied.facts))
        except Exception:  # counted already: a failed check is tried with the next batch
            log.exception("usage thresholds could not be checked")
    return applied
