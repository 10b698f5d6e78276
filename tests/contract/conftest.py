"""Fixtures building every adapter of a port: each contract test runs against all of them.

A later adapter (Cosmos, Service Bus, Key Vault) joins by adding a fixture param.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from shared.adapters.azure.cosmos import (
    CosmosDocumentStore,
    build_cosmos_client,
    create_containers,
)
from shared.adapters.azure.cosmos_layout import CosmosContainer
from shared.adapters.azure.keyvault import KeyVaultSecretStore
from shared.adapters.embedded.secrets import EncryptedSecretStore
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.adapters.embedded.sqlite_queue import SqliteQueue
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.containers import CONTAINERS
from shared.ports import ContainerSpec, SecretStore, Subscription
from tests.azure_fakes import FakeSecretClient
from tests.fakes import FakeClock, FakeDocumentStore, FakeQueue, FakeSecretStore
from tests.support import cosmos
from tests.support.cosmos import CosmosServer

SPECS = (
    ContainerSpec(
        "notes",
        indexed=("created_at", "rank", "meta.group", "flag", "v", "odd"),
        ordered=("created_at", "rank"),
    ),
    ContainerSpec("people", indexed=("name",), unique=("name", "contact.email")),
    ContainerSpec("entries", indexed=("kind",), partition_key=("id",)),
    ContainerSpec(
        "records", indexed=("rank",), ordered=("rank",), partition_key=("tenant_id", "id")
    ),
    ContainerSpec("tallies", indexed=("kind",), partition_key=("tenant_id", "partition")),
    *CONTAINERS,
)
TOPICS = {
    "events": ("log", "hooks", Subscription("failures", only=("type", ("failed", "expired")))),
    "alerts": (Subscription("pager", only=("type", ("failed",))),),
}
MAX_DELIVERIES = 3


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "ocm.sqlite3")
    yield db
    db.close()


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[CosmosServer]:
    """The local Cosmos DB server (npm, installed on first use), for the session."""
    try:
        with cosmos.running() as server:
            yield server
    except cosmos.CosmosServerUnavailable as exc:
        pytest.fail(f"the local Cosmos server is needed for the Cosmos contract: {exc}")


# What the Cosmos DB adapter cannot show against the local server, or does not
# promise because Cosmos DB itself does not (see shared/ports/documents.py); each
# test that needs one of these is marked with ``pytest.mark.needs(...)``.
COSMOS_GAPS = {
    "clock": "documents expire by Cosmos DB's own clock (ttl), not a fake one; the "
    "local server does not expire them at all (tests/contract/test_cosmos_live.py)",
    "global_ids": "Cosmos DB keeps ids unique per partition; ours are globally unique "
    "ULIDs by construction, and the store is not asked to detect a clash across tenants",
}


def local_server_policy(shape: CosmosContainer) -> dict[str, Any]:
    """Deviation of the local server, mended here: Cosmos DB serves ORDER BY a DESC,
    id DESC from the composite index (a ASC, id ASC) — the exact opposite order —
    while the local server wants a descending composite of its own."""
    policy = copy.deepcopy(shape.indexing_policy)
    policy["compositeIndexes"] += [
        [{**path, "order": "descending"} for path in composite]
        for composite in shape.indexing_policy["compositeIndexes"]
    ]
    return policy


@pytest.fixture(params=["memory", "sqlite", "cosmos"])
async def store(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[FakeDocumentStore | SqliteDocumentStore | CosmosDocumentStore]:
    if request.param == "memory":
        yield FakeDocumentStore(SPECS, clock)
    elif request.param == "sqlite":
        yield SqliteDocumentStore(request.getfixturevalue("database"), SPECS, clock)
    else:
        marker = request.node.get_closest_marker("needs")
        for need in marker.args if marker else ():
            pytest.skip(COSMOS_GAPS[need])
        server: CosmosServer = request.getfixturevalue("cosmos_server")
        async with build_cosmos_client(server.endpoint, server.key) as client:
            database = await client.create_database(f"contract-{uuid.uuid4().hex[:12]}")
            await create_containers(database, SPECS, indexing_policy=local_server_policy)
            yield CosmosDocumentStore(database, SPECS)
            await client.delete_database(database.id)


@pytest.fixture(params=["memory", "sqlite"])
def queue(request: pytest.FixtureRequest, clock: FakeClock) -> FakeQueue | SqliteQueue:
    if request.param == "memory":
        return FakeQueue(clock, topics=TOPICS, max_delivery_count=MAX_DELIVERIES)
    return SqliteQueue(
        request.getfixturevalue("database"),
        clock,
        topics=TOPICS,
        max_delivery_count=MAX_DELIVERIES,
    )


@pytest.fixture(params=["memory", "sqlite", "keyvault"])
def secrets(request: pytest.FixtureRequest) -> SecretStore:
    if request.param == "memory":
        return FakeSecretStore()
    if request.param == "keyvault":
        # Key Vault itself is not available here: its client is faked at the SDK
        # boundary (tests/azure_fakes.py), answering with the SDK's own models.
        return KeyVaultSecretStore(FakeSecretClient(), ttl_seconds=60)  # type: ignore[arg-type]
    return EncryptedSecretStore(request.getfixturevalue("database"), Fernet.generate_key())
