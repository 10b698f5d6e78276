"""DocumentStore.transact: all of a transaction's writes or none, in one logical
partition, as Cosmos DB's transactional batch promises (on Cosmos DB itself through
the SDK's execute_item_batch, against a local server whose wrapper keeps the
documented semantics; SQLite in one savepoint; the in-memory fake)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.azure.cosmos import CosmosDocumentStore
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.ports import (
    MAX_TRANSACTION_WRITES,
    BatchFailed,
    Conflict,
    NotFound,
    PreconditionFailed,
    Write,
)
from tests.fakes import FakeDocumentStore

Store = FakeDocumentStore | SqliteDocumentStore | CosmosDocumentStore


def tally(doc_id: str, tenant: str = "tn_a", **fields: Any) -> dict[str, Any]:
    return {"id": doc_id, "tenant_id": tenant, "partition": doc_id.split("|")[0], **fields}


async def test_every_write_lands_and_comes_back_with_its_etag(store: Store) -> None:
    bucket = await store.create("tallies", tally("d1|bucket", count=1))
    done = await store.transact(
        "tallies",
        [
            Write("create", tally("d1|m1:sent", kind="marker")),
            Write("replace", tally("d1|bucket", count=2), etag=bucket["_etag"]),
            Write("upsert", tally("d1|other", count=7)),
        ],
    )
    assert [d["id"] for d in done] == ["d1|m1:sent", "d1|bucket", "d1|other"]
    for written in done:
        assert await store.read("tallies", "tn_a", written["id"]) == written
    assert done[1]["count"] == 2 and done[1]["_etag"] != bucket["_etag"]


async def test_a_create_of_an_existing_id_fails_the_whole_transaction(store: Store) -> None:
    """The exactly-once marker: the duplicate's 409 undoes the counters beside it."""
    bucket = await store.create("tallies", tally("d1|bucket", count=1))
    await store.create("tallies", tally("d1|m1:sent", kind="marker"))
    with pytest.raises(BatchFailed) as failed:
        await store.transact(
            "tallies",
            [
                Write("create", tally("d1|m2:sent", kind="marker")),
                Write("create", tally("d1|m1:sent", kind="marker")),
                Write("replace", tally("d1|bucket", count=3), etag=bucket["_etag"]),
            ],
        )
    assert failed.value.index == 1 and isinstance(failed.value.cause, Conflict)
    assert await store.read("tallies", "tn_a", "d1|m2:sent") is None
    assert await store.read("tallies", "tn_a", "d1|bucket") == bucket


async def test_a_stale_etag_fails_the_whole_transaction(store: Store) -> None:
    bucket = await store.create("tallies", tally("d1|bucket", count=1))
    moved_on = await store.replace("tallies", tally("d1|bucket", count=5))
    with pytest.raises(BatchFailed) as failed:
        await store.transact(
            "tallies",
            [
                Write("create", tally("d1|m1:sent")),
                Write("replace", tally("d1|bucket", count=2), etag=bucket["_etag"]),
            ],
        )
    assert failed.value.index == 1 and isinstance(failed.value.cause, PreconditionFailed)
    assert await store.read("tallies", "tn_a", "d1|m1:sent") is None
    assert await store.read("tallies", "tn_a", "d1|bucket") == moved_on


async def test_a_replace_of_a_missing_document_fails_the_whole_transaction(store: Store) -> None:
    with pytest.raises(BatchFailed) as failed:
        await store.transact(
            "tallies",
            [Write("upsert", tally("d1|a")), Write("replace", tally("d1|missing"))],
        )
    assert failed.value.index == 1 and isinstance(failed.value.cause, NotFound)
    assert await store.read("tallies", "tn_a", "d1|a") is None


async def test_a_transaction_stays_in_one_partition(store: Store) -> None:
    with pytest.raises(ValueError, match="one tenant's partition"):
        await store.transact(
            "tallies", [Write("create", tally("d1|a")), Write("create", tally("d2|b"))]
        )
    with pytest.raises(ValueError, match="one tenant's partition"):
        await store.transact(
            "tallies", [Write("create", tally("d1|a")), Write("create", tally("d1|b", "tn_b"))]
        )
    with pytest.raises(ValueError, match="partition of its own"):
        await store.transact(
            "records",
            [
                Write("create", {"id": "r1", "tenant_id": "tn_a"}),
                Write("create", {"id": "r2", "tenant_id": "tn_a"}),
            ],
        )
    assert await store.read("tallies", "tn_a", "d1|a") is None


async def test_a_transaction_takes_at_most_a_batchs_operations(store: Store) -> None:
    writes = [Write("create", tally(f"d1|m{i}")) for i in range(MAX_TRANSACTION_WRITES + 1)]
    with pytest.raises(ValueError, match="1 to 100 writes"):
        await store.transact("tallies", writes)
    with pytest.raises(ValueError, match="1 to 100 writes"):
        await store.transact("tallies", [])
    done = await store.transact("tallies", writes[:MAX_TRANSACTION_WRITES])
    assert len(done) == MAX_TRANSACTION_WRITES


async def test_a_transaction_in_a_tenant_keyed_container(store: Store) -> None:
    await store.transact(
        "notes",
        [
            Write("create", {"id": "n1", "tenant_id": "tn_a"}),
            Write("create", {"id": "n2", "tenant_id": "tn_a"}),
        ],
    )
    assert await store.read("notes", "tn_a", "n2") is not None


async def test_a_document_must_carry_its_ids_partition(store: Store) -> None:
    with pytest.raises(ValueError, match="partition field"):
        await store.create("tallies", {"id": "d1|x", "tenant_id": "tn_a", "partition": "d2"})
    with pytest.raises(ValueError, match="names no partition"):
        await store.create("tallies", {"id": "plain", "tenant_id": "tn_a", "partition": "plain"})


async def test_the_cosmos_meter_counts_a_transactions_operations(store: Store) -> None:
    """docs/cost.md prices operations by kind: a batch's writes count as writes."""
    if not isinstance(store, CosmosDocumentStore):
        pytest.skip("the Cosmos adapter's meter")
    await store.transact(
        "tallies", [Write("create", tally("d1|a")), Write("upsert", tally("d1|b"))]
    )
    assert store.meter.operations["transact:tallies"] == 1
    assert store.meter.operations["create:tallies"] == 1
    assert store.meter.operations["upsert:tallies"] == 1
