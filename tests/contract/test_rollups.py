"""Rollups count every fact exactly once, on every store (the in-memory fake,
SQLite, the Cosmos adapter against the local server): facts delivered 1-3 times in
random order, across batches, with the consumer crashing between partitions and
inside a transaction, and everything replayed from the start at the end, leave
every hour bucket equal to the counts recomputed from the facts themselves."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.adapters.azure.cosmos import CosmosDocumentStore
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.containers import ROLLUPS
from shared.domain.facts import Fact
from shared.domain.models import Document
from shared.ports import Query, Write
from shared.services.analytics import histogram, rollup
from tests.fakes import FakeDocumentStore

Store = FakeDocumentStore | SqliteDocumentStore | CosmosDocumentStore
START = datetime(2030, 1, 1, 22, tzinfo=UTC)  # facts span midnight: two day partitions


class Crash(Exception):
    """The consumer's process dies here."""


class CrashingStore:
    """The store as a consumer that dies sees it: a transaction in ``one_in`` either
    never starts or is cut short inside (the adapter's transaction undoes it:
    nothing of it lands)."""

    def __init__(self, store: Store, rng: random.Random, one_in: int) -> None:
        self._store = store
        self._rng = rng
        self._one_in = one_in
        self.crashes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        if self._rng.randrange(self._one_in) == 0:
            self.crashes += 1
            raise Crash("between partitions, or inside a transaction before its commit")
        return await self._store.transact(container, writes)


def histories(rng: random.Random, messages: int) -> list[Fact]:
    facts: list[Fact] = []
    for i in range(messages):
        tenant = f"tn_{i % 3}"
        accepted = START + timedelta(seconds=rng.uniform(0, 4 * 3600))
        dims = {
            "channel": f"ch{i % 5}",
            "provider": rng.choice(["twilio", "smtp", "meta"]),
            "country": rng.choice(["NO", "GB", "US"]),
            "sender": f"sender-{rng.randrange(80)}",  # past MAX_VALUES: some count as other
        }
        tags = (f"tag-{rng.randrange(200)}",)
        fact = {"tenant_id": tenant, "message_id": f"msg_{i}", "dims": dims, "tags": tags}
        facts.append(Fact(transition="accepted", at=accepted, accepted_at=accepted, **fact))
        outcome = rng.choice(["delivered", "delivered", "failed", "expired", "cancelled"])
        if outcome in ("delivered", "failed"):
            sent = accepted + timedelta(seconds=rng.uniform(0.05, 30))
            facts.append(Fact(transition="sent", at=sent, accepted_at=accepted, **fact))
            end = sent + timedelta(seconds=rng.uniform(0.5, 600))
            facts.append(
                Fact(transition=outcome, at=end, accepted_at=accepted, sent_at=sent, **fact)
            )
        else:
            end = accepted + timedelta(seconds=rng.uniform(1, 900))
            facts.append(Fact(transition=outcome, at=end, accepted_at=accepted, **fact))
    return facts


async def buckets(store: Store) -> dict[tuple[str, str], Document]:
    found: dict[tuple[str, str], Document] = {}
    for tenant in ("tn_0", "tn_1", "tn_2"):
        cursor = None
        while True:
            page = await store.query(
                ROLLUPS, Query(scope=tenant, where=(), limit=100, cursor=cursor)
            )
            for doc in page.items:
                if doc.get("kind") == "hour":
                    found[(tenant, doc["hour"])] = doc
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return found


def expected(facts: Sequence[Fact]) -> dict[tuple[str, str], Counter[str]]:
    counts: dict[tuple[str, str], Counter[str]] = {}
    for fact in facts:
        counts.setdefault((fact.tenant_id, fact.hour), Counter())[fact.transition] += 1
    return counts


async def test_every_fact_counts_once_through_redeliveries_crashes_and_a_replay(
    store: Store,
) -> None:
    rng = random.Random(15)
    facts = histories(rng, 300)
    deliveries = [f for f in facts for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    crashing = CrashingStore(store, rng, one_in=12)
    batch_size = 64
    position = 0
    while position < len(deliveries):
        batch = deliveries[position : position + batch_size]
        try:
            await rollup.apply(crashing, batch)  # type: ignore[arg-type]
        except Crash:
            continue  # the batch is redelivered whole (Service Bus: lock lost)
        position += batch_size
    assert crashing.crashes >= 20
    replayed = await rollup.apply(store, facts)  # the subscription read from the start
    assert replayed.counted == 0 and replayed.duplicates == len(facts)

    stored = await buckets(store)
    want = expected(facts)
    assert {key: Counter(doc["counts"]) for key, doc in stored.items()} == want
    for doc in stored.values():
        # A dimension's values add up to the transition's total (other included).
        for values in doc["by"].values():
            per_transition: Counter[str] = Counter()
            for counts in values.values():
                per_transition.update(counts)
            assert per_transition == Counter(doc["counts"])
            assert len(values) <= rollup.MAX_VALUES + 1
        # Every latency counted once: accept->sent as many as the sent facts.
        sent = doc["counts"].get("sent", 0)
        assert doc["latency"].get("accept_to_sent", histogram.empty())["n"] == sent


async def test_a_fact_counts_in_its_own_hour_whatever_arrives_first(store: Store) -> None:
    accepted = START
    sent = START + timedelta(hours=1, minutes=5)
    delivered = START + timedelta(hours=2, minutes=1)
    fact = {"tenant_id": "tn_0", "message_id": "msg_late", "dims": {"channel": "sms"}}
    late_first = [
        Fact(transition="delivered", at=delivered, accepted_at=accepted, sent_at=sent, **fact),
        Fact(transition="sent", at=sent, accepted_at=accepted, **fact),
        Fact(transition="accepted", at=accepted, accepted_at=accepted, **fact),
    ]
    for one in late_first:
        await rollup.apply(store, [one])
    stored = await buckets(store)
    assert {hour: dict(doc["counts"]) for (_, hour), doc in stored.items()} == {
        "2030-01-01T22": {"accepted": 1},
        "2030-01-01T23": {"sent": 1},
        "2030-01-02T00": {"delivered": 1},
    }
    delivered_bucket = stored[("tn_0", "2030-01-02T00")]
    step = delivered_bucket["latency"]["sent_to_delivered"]
    assert step["n"] == 1 and abs(histogram.quantile(step, 0.5) - 3360) / 3360 <= 0.05


@pytest.mark.parametrize("values", [rollup.MAX_VALUES + 10, 10_000])
async def test_a_bucket_keeps_a_bounded_number_of_values(store: Store, values: int) -> None:
    at = START + timedelta(minutes=1)
    facts = [
        Fact(
            tenant_id="tn_0",
            message_id=f"msg_{i}",
            transition="accepted",
            at=at,
            accepted_at=at,
            dims={"sender": f"s{i}"},
            tags=(f"t{i}",),
        )
        for i in range(values)
    ]
    await rollup.apply(store, facts)
    doc = (await buckets(store))[("tn_0", "2030-01-01T22")]
    assert len(doc["tags"]) == rollup.MAX_VALUES + 1
    assert doc["tags"][rollup.OTHER]["accepted"] == values - rollup.MAX_VALUES
    assert len(doc["by"]["sender"]) == rollup.MAX_VALUES + 1
    assert len(orjson.dumps(doc)) < 64 * 1024
