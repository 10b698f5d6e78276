"""What only a real Cosmos DB account can show: hierarchical partition keys as they
really route, TTL expiry by Cosmos's own clock, descending pages served by the
ascending composite index, transactional batches, and real request charges.

Runs when OCM_TEST_COSMOS_ENDPOINT and OCM_TEST_COSMOS_KEY name an account (a
database ``ocm-live-<random>`` is created with the containers exactly as
``cosmos_layout`` defines them, and deleted afterwards); skipped otherwise. The
rest of the store contract runs against the local server in every ``make test``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client, create_containers
from shared.ports import SYSTEM, BatchFailed, Conflict, NotFound, PreconditionFailed, Query, Write
from tests.contract.conftest import SPECS

ENDPOINT = os.environ.get("OCM_TEST_COSMOS_ENDPOINT", "")
KEY = os.environ.get("OCM_TEST_COSMOS_KEY", "")

pytestmark = pytest.mark.skipif(
    not (ENDPOINT and KEY),
    reason="live Cosmos DB suite: set OCM_TEST_COSMOS_ENDPOINT and OCM_TEST_COSMOS_KEY to run it",
)


@pytest.fixture
async def live() -> AsyncIterator[CosmosDocumentStore]:
    async with build_cosmos_client(ENDPOINT, KEY) as client:
        database = await client.create_database(f"ocm-live-{uuid.uuid4().hex[:10]}")
        try:
            await create_containers(database, SPECS)  # exactly the layout, no local mends
            yield CosmosDocumentStore(database, SPECS)
        finally:
            await client.delete_database(database.id)


async def test_a_hierarchical_key_reads_by_tenant_and_id_and_lists_by_tenant(
    live: CosmosDocumentStore,
) -> None:
    await live.create_many(
        "records", [{"id": f"r{i}", "tenant_id": "tn_a", "rank": i} for i in range(5)]
    )
    await live.create("records", {"id": "r9", "tenant_id": "tn_b", "rank": 1})
    assert (await live.read("records", "tn_a", "r3"))["rank"] == 3  # type: ignore[index]
    assert await live.read("records", "tn_b", "r3") is None
    page = await live.query("records", Query(scope="tn_a", order_by="rank", descending=True))
    assert [d["rank"] for d in page.items] == [4, 3, 2, 1, 0]
    assert live.meter.request_units["read:records"] >= 1  # real charges are recorded


async def test_ids_are_unique_per_partition_only(live: CosmosDocumentStore) -> None:
    await live.create("records", {"id": "same", "tenant_id": "tn_a"})
    await live.create("records", {"id": "same", "tenant_id": "tn_b"})  # Cosmos allows it
    with pytest.raises(Conflict):
        await live.create("records", {"id": "same", "tenant_id": "tn_a"})


async def test_a_document_expires_by_its_ttl(live: CosmosDocumentStore) -> None:
    await live.create("notes", {"id": "n1", "tenant_id": "tn_a", "ttl": 1})
    await live.create("notes", {"id": "n2", "tenant_id": "tn_a"})
    await asyncio.sleep(3)
    assert await live.read("notes", "tn_a", "n1") is None
    assert [d["id"] for d in (await live.query("notes", Query(scope=SYSTEM))).items] == ["n2"]


async def test_missing_unique_values_never_clash_but_equal_ones_do(
    live: CosmosDocumentStore,
) -> None:
    await live.create("people", {"id": "p1", "tenant_id": "tn_a"})
    await live.create("people", {"id": "p2", "tenant_id": "tn_a", "name": None})
    await live.create("people", {"id": "p3", "tenant_id": "tn_a", "name": "ann"})
    await live.create("people", {"id": "p4", "tenant_id": "tn_b", "name": "ann"})
    with pytest.raises(Conflict):
        await live.create("people", {"id": "p5", "tenant_id": "tn_a", "name": "ann"})
    await live.patch("people", "tn_a", "p3", {"name": None})
    await live.create("people", {"id": "p5", "tenant_id": "tn_a", "name": "ann"})


async def test_a_patch_under_a_hierarchical_key_honours_the_etag(
    live: CosmosDocumentStore,
) -> None:
    created = await live.create("records", {"id": "r1", "tenant_id": "tn_a", "rank": 1})
    patched = await live.patch("records", "tn_a", "r1", {"rank": 2}, etag=created["_etag"])
    assert patched["rank"] == 2
    with pytest.raises(PreconditionFailed):
        await live.patch("records", "tn_a", "r1", {"rank": 3}, etag=created["_etag"])
    with pytest.raises(NotFound):
        await live.patch("records", "tn_b", "r1", {"rank": 3})


async def test_a_transactional_batch_is_all_or_nothing_in_a_tenant_and_day_partition(
    live: CosmosDocumentStore,
) -> None:
    """The real execute_item_batch on a ("tenant_id", "partition") key: what
    tests/support/cosmos_server.js emulates for the local server."""

    def tally(doc_id: str, **fields: object) -> dict[str, object]:
        return {"id": doc_id, "tenant_id": "tn_a", "partition": doc_id.split("|")[0], **fields}

    bucket = await live.create("tallies", tally("d1|bucket", count=1))
    await live.create("tallies", tally("d1|m1:sent"))
    with pytest.raises(BatchFailed) as failed:
        await live.transact(
            "tallies",
            [
                Write("create", tally("d1|m2:sent")),
                Write("create", tally("d1|m1:sent")),
                Write("replace", tally("d1|bucket", count=3), etag=bucket["_etag"]),
            ],
        )
    assert failed.value.index == 1 and isinstance(failed.value.cause, Conflict)
    assert await live.read("tallies", "tn_a", "d1|m2:sent") is None
    done = await live.transact(
        "tallies",
        [
            Write("create", tally("d1|m2:sent")),
            Write("replace", tally("d1|bucket", count=2), etag=bucket["_etag"]),
        ],
    )
    assert (await live.read("tallies", "tn_a", "d1|bucket")) == done[1]
    assert live.meter.request_units["transact:tallies"] > 0
