"""Compaction and retention as a tenant querying a long window sees them: reconciled
days become day buckets and a closed month a month bucket, long windows read them
(and agree with the hours they came from), and each interval reaches back as far as
its buckets are kept."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.config import Settings
from shared.containers import MESSAGES
from shared.domain.errors import ValidationFailed
from shared.domain.facts import facts_of
from shared.domain.messages import to_utc_text
from shared.services.analytics import compact, query, reconcile, rollup
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.fakes import FakeClock

FIRST = datetime(2030, 1, 30, 0, 0, tzinfo=UTC)


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    settings = Settings(OCM_DATA_DIR=tmp_path, OCM_RATE_LIMIT_PER_SECOND=0)
    embedded = bootstrap.build(settings)
    clock = FakeClock(FIRST)
    yield bootstrap.platform(settings, embedded.store, embedded.queue, embedded.secrets, clock)
    await bootstrap.close(embedded)


def message(tenant_id: str, i: int, at: datetime, channel: str) -> dict[str, Any]:
    sent, delivered = at + timedelta(seconds=2), at + timedelta(seconds=9)
    return {
        "id": f"msg_{i:05d}",
        "tenant_id": tenant_id,
        "direction": "outbound",
        "status": "delivered",
        "channel": channel,
        "created_at": to_utc_text(at),
        "updated_at": to_utc_text(delivered),
        "events": [
            {"id": f"e{i}_0", "type": "message.queued", "at": to_utc_text(at)},
            {"id": f"e{i}_1", "type": "message.sent", "at": to_utc_text(sent)},
            {"id": f"e{i}_2", "type": "message.delivered", "at": to_utc_text(delivered)},
        ],
    }


async def totals(
    deps: Deps, tenant: str, start: datetime, end: datetime, **kw: Any
) -> Counter[str]:
    found = await query.messages(deps, tenant, start=start, end=end, **kw)
    return Counter({k: v for line in found["series"] for k, v in line["totals"].items() if v})


async def test_days_and_months_are_compacted_and_long_windows_read_them(deps: Deps) -> None:
    assert isinstance(deps.clock, FakeClock)
    tenant = (await signup.create_tenant(deps, "longview")).tenant["id"]
    rng = random.Random(3)
    docs = [
        message(tenant, i, FIRST + timedelta(seconds=rng.uniform(0, 3 * 86_400 - 60)), f"c{i % 60}")
        for i in range(600)
    ]
    for doc in docs:
        await deps.store.upsert(MESSAGES, doc)
    facts = [f for d in docs for f in facts_of(d)]
    await rollup.apply(deps.store, facts)
    expected = Counter(f.transition for f in facts)

    moment = FIRST + timedelta(minutes=20)  # the first run: nothing closed to compact yet
    while moment <= FIRST + timedelta(days=3, hours=12):
        deps.clock.set(moment)
        await reconcile.run(deps)
        moment += timedelta(hours=12)
    span = query.window(
        deps.clock.now(), datetime(2030, 1, 1, tzinfo=UTC), FIRST + timedelta(days=3), "day", "UTC"
    )
    found = {b["id"]: b for b in await query.stored_buckets(deps, tenant, span, ["day", "month"])}
    assert set(found) == {
        compact.day_id(tenant, d) for d in ("2030-01-30", "2030-01-31", "2030-02-01")
    } | {compact.month_id(tenant, "2030-01")}
    # 60 channels, more than a bucket names: the day keeps the 50 largest, the rest
    # counted under "other", and nothing lost.
    day = found[compact.day_id(tenant, "2030-01-31")]
    assert len(day["by"]["channel"]) == rollup.MAX_VALUES + 1
    assert (
        sum(v.get("accepted", 0) for v in day["by"]["channel"].values())
        == day["counts"]["accepted"]
    )

    end = FIRST + timedelta(days=3)
    daily = await totals(deps, tenant, FIRST, end, interval="day")
    hourly = await totals(deps, tenant, FIRST, end, interval="hour")
    paris = await totals(deps, tenant, FIRST, end, interval="day", tz="Europe/Paris")
    assert daily == hourly == paris == expected
    chosen = await query.buckets(
        deps, tenant, query.window(deps.clock.now(), FIRST, end, "day", "UTC")
    )
    assert {b["kind"] for b in chosen} == {"day"}
    january = await totals(
        deps,
        tenant,
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 2, 1, tzinfo=UTC),
        interval="month",
    )
    assert january == Counter(f.transition for f in facts if f.at.month == 1)
    chosen = await query.buckets(
        deps,
        tenant,
        query.window(
            deps.clock.now(),
            datetime(2030, 1, 1, tzinfo=UTC),
            datetime(2030, 2, 1, tzinfo=UTC),
            "month",
            "UTC",
        ),
    )
    assert [b["kind"] for b in chosen] == ["month"]

    # Five months on: hours are past their retention, days are not.
    deps.clock.set(datetime(2030, 6, 30, tzinfo=UTC))
    with pytest.raises(ValidationFailed) as refused:
        await totals(deps, tenant, FIRST, end, interval="hour")
    assert refused.value.code == "ANALYTICS_BEYOND_RETENTION"
    assert await totals(deps, tenant, FIRST, end, interval="day", tz="Europe/Paris") == expected
    deps.clock.set(datetime(2031, 6, 30, tzinfo=UTC))
    with pytest.raises(ValidationFailed):
        await totals(deps, tenant, FIRST, end, interval="day")
    assert (
        await totals(
            deps,
            tenant,
            datetime(2030, 1, 1, tzinfo=UTC),
            datetime(2030, 2, 1, tzinfo=UTC),
            interval="month",
        )
        == january
    )


async def test_a_tenants_own_retention_sets_each_buckets_ttl_and_the_reach_of_queries(
    deps: Deps,
) -> None:
    from shared.containers import ROLLUPS
    from shared.services.analytics import retention

    assert isinstance(deps.clock, FakeClock)
    tenant = (await signup.create_tenant(deps, "brief")).tenant["id"]
    short = retention.Retention(hour_days=7, day_days=30, month_days=400)
    await retention.put(deps, tenant, short)
    doc = message(tenant, 1, FIRST + timedelta(hours=1), "c1")
    await deps.store.upsert(MESSAGES, doc)
    await rollup.apply(deps.store, facts_of(doc), {tenant: short.hour_days * 86_400})
    hour = await deps.store.read(
        ROLLUPS, tenant, rollup.hour_id(tenant, "2030-01-30", "2030-01-30T01")
    )
    assert hour is not None and hour["ttl"] == 7 * 86_400
    for moment in (
        FIRST + timedelta(minutes=20),
        FIRST + timedelta(hours=12),
        FIRST + timedelta(days=1, hours=1),
    ):
        deps.clock.set(moment)
        await reconcile.run(deps)
    day = await deps.store.read(ROLLUPS, tenant, compact.day_id(tenant, "2030-01-30"))
    assert day is not None and day["ttl"] == 30 * 86_400
    deps.clock.set(FIRST + timedelta(days=10))
    with pytest.raises(ValidationFailed) as refused:
        await totals(deps, tenant, FIRST, FIRST + timedelta(days=1), interval="hour")
    assert "kept 7 days" in refused.value.errors[0].message
    assert await totals(deps, tenant, FIRST, FIRST + timedelta(days=1), interval="day") == {
        "accepted": 1,
        "sent": 1,
        "delivered": 1,
    }
