"""Fixtures building every adapter of a port: each contract test runs against all of them.

A later adapter (Cosmos, Service Bus, Key Vault) joins by adding a fixture param.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shared.adapters.embedded.secrets import EncryptedSecretStore
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.adapters.embedded.sqlite_queue import SqliteQueue
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.containers import CONTAINERS
from shared.ports import ContainerSpec, SecretStore, Subscription
from tests.fakes import FakeClock, FakeDocumentStore, FakeQueue, FakeSecretStore

SPECS = (
    ContainerSpec("notes", indexed=("created_at", "rank", "meta.group")),
    ContainerSpec("people", indexed=("name",), unique=("name", "contact.email")),
    *CONTAINERS,
)
TOPICS = {
    "events": ("log", "hooks", Subscription("failures", only=("type", ("failed", "expired"))))
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


@pytest.fixture(params=["memory", "sqlite"])
def store(
    request: pytest.FixtureRequest, clock: FakeClock
) -> FakeDocumentStore | SqliteDocumentStore:
    if request.param == "memory":
        return FakeDocumentStore(SPECS, clock)
    return SqliteDocumentStore(request.getfixturevalue("database"), SPECS, clock)


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


@pytest.fixture(params=["memory", "sqlite"])
def secrets(request: pytest.FixtureRequest) -> SecretStore:
    if request.param == "memory":
        return FakeSecretStore()
    return EncryptedSecretStore(request.getfixturevalue("database"), Fernet.generate_key())
