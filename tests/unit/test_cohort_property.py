"""A property over random message histories: when an hour closes and is reconciled,
its bucket's cohort (the messages accepted in it) keeps the nesting accepted ≥ sent
≥ delivered ≥ read and delivered + failed + expired + cancelled + pending =
accepted, and its counts are those of the facts in the hour, whatever order and
how many times the events were counted before."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import Settings
from shared.containers import MESSAGES, ROLLUPS
from shared.domain.facts import facts_of
from shared.domain.messages import to_utc_text
from shared.services.analytics import reconcile, rollup
from shared.services.deps import Deps
from tests.fakes import FakeClock, FakeDocumentStore, FakeQueue, FakeSecretStore

START = datetime(2030, 5, 1, 8, tzinfo=UTC)
PATHS = [
    (),
    ("sent",),
    ("sent", "delivered"),
    ("sent", "delivered", "read"),
    ("sent", "read"),  # a read receipt with no delivered one
    ("sent", "failed"),
    ("failed",),
    ("expired",),
    ("cancelled",),
    ("delivered", "sent"),  # the receipt's time before the send's record
]
TYPE = {t: f"message.{t}" for t in ("sent", "delivered", "read", "failed", "expired", "cancelled")}

history = st.tuples(
    st.floats(0, 3 * 3600),  # accepted, seconds after START
    st.sampled_from(PATHS),
    st.lists(st.floats(0.01, 5400), min_size=3, max_size=3),  # gaps between steps
)


def document(i: int, accepted: float, path: tuple[str, ...], gaps: list[float]) -> dict[str, Any]:
    at = START + timedelta(seconds=accepted)
    events = [{"id": f"e{i}_0", "type": "message.queued", "at": to_utc_text(at)}]
    for n, step in enumerate(path):
        at += timedelta(seconds=gaps[n])
        events.append({"id": f"e{i}_{n + 1}", "type": TYPE[step], "at": to_utc_text(at)})
    if path and path[0] == "delivered":  # out of order: delivered stamped before sent
        events[1]["at"], events[2]["at"] = events[2]["at"], events[1]["at"]
    return {
        "id": f"msg_{i:04d}",
        "tenant_id": "tn_p",
        "direction": "outbound",
        "status": path[-1] if path else "queued",
        "channel": "c",
        "created_at": events[0]["at"],
        "updated_at": max(e["at"] for e in events),
        "events": events,
    }


def upto(doc: dict[str, Any], moment: datetime) -> dict[str, Any] | None:
    """The document as it stood at ``moment`` (None: not accepted yet)."""
    stamp = to_utc_text(moment)
    events = [e for e in doc["events"] if e["at"] <= stamp]
    if not events or doc["created_at"] > stamp:
        return None
    return {**doc, "events": events, "updated_at": max(e["at"] for e in events)}


async def check(histories: list[tuple[float, tuple[str, ...], list[float]]], seed: int) -> None:
    clock = FakeClock(START)
    store = FakeDocumentStore(clock=clock)
    deps = Deps(
        settings=Settings(),
        store=store,
        queue=FakeQueue(clock),
        secrets=FakeSecretStore(),
        clock=clock,
        senders={},
        catalog=None,  # type: ignore[arg-type]  # no channel is looked up here
    )
    docs = [document(i, *h) for i, h in enumerate(histories)]
    rng = random.Random(seed)
    for hour in (START + timedelta(hours=h) for h in range(4)):
        closes = hour + timedelta(hours=1) + reconcile.CLOSED_AFTER
        clock.set(closes)
        now = [d for d in (upto(doc, closes) for doc in docs) if d is not None]
        for doc in now:
            await store.upsert(MESSAGES, doc)
        facts = [f for d in now for f in facts_of(d)]
        some = [f for f in facts if rng.random() < 0.7]  # some events lost on the way
        await rollup.apply(store, rng.sample(some, len(some)) + some[: len(some) // 3])
        await reconcile.reconcile_hour(deps, "tn_p", hour)
        bucket = await store.read(
            ROLLUPS,
            "tn_p",
            rollup.hour_id("tn_p", hour.date().isoformat(), reconcile.hour_text(hour)),
        )
        in_hour = [f for f in facts if f.hour == reconcile.hour_text(hour)]
        if bucket is None:
            assert not in_hour
            continue
        counts = {
            t: sum(1 for f in in_hour if f.transition == t) for t in {f.transition for f in in_hour}
        }
        assert bucket["counts"] == counts, (bucket["counts"], counts)
        cohort = bucket.get("cohort")
        if cohort is None:
            assert counts.get("accepted", 0) == 0
            continue
        assert cohort["accepted"] == counts.get("accepted", 0)
        assert cohort["accepted"] >= cohort["sent"] >= cohort["delivered"] >= cohort["read"]
        ends = sum(cohort[t] for t in ("delivered", "failed", "expired", "cancelled", "pending"))
        assert ends == cohort["accepted"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(history, min_size=1, max_size=40), st.integers(0, 1000))
def test_a_closed_hour_keeps_the_nesting_and_accounts_for_every_accepted_message(
    histories: list[tuple[float, tuple[str, ...], list[float]]], seed: int
) -> None:
    asyncio.run(check(histories, seed))
