"""Azure review R3: the Cosmos DB emulator listens on https://localhost:8081/ with a
self-signed certificate, and its account names endpoints of its own. The client
reaches it with TLS verification and endpoint discovery off, and only there:
every other https endpoint keeps both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.azure.cosmos import build_cosmos_client, create_containers
from shared.adapters.azure.cosmos_endpoint import client_options
from shared.containers import CONTAINERS
from tests.support import cosmos, tls
from tests.support.cosmos import CosmosServer

EMULATOR = "https://localhost:8081/"
ACCOUNT = "https://ocm-cosmos.documents.azure.com:443/"


@pytest.fixture(scope="module")
def server() -> Iterator[CosmosServer]:
    with cosmos.running() as running:
        yield running


@pytest.mark.parametrize(
    "endpoint",
    [EMULATOR, "https://127.0.0.1:8081/", "HTTPS://LocalHost:8081", " https://localhost/"],
)
def test_the_emulator_on_this_machine_goes_unverified_and_undiscovered(endpoint: str) -> None:
    assert client_options(endpoint) == {
        "consistency_level": "Session",
        "enable_endpoint_discovery": False,
        "connection_verify": False,
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        ACCOUNT,
        "https://localhost.example.com:8081/",
        "https://127.0.0.1.example.com/",
        "https://127.0.0.1@ocm-cosmos.documents.azure.com/",
        "https://ocm-cosmos.documents.azure.com/?host=localhost",
        "https://10.0.0.4:8081/",
    ],
)
def test_every_other_https_endpoint_is_verified_and_discovered(endpoint: str) -> None:
    assert client_options(endpoint) == {"consistency_level": "Session"}


def test_a_plain_http_server_has_no_regions_but_nothing_to_verify() -> None:
    assert client_options("http://127.0.0.1:8901/") == {
        "consistency_level": "Session",
        "enable_endpoint_discovery": False,
    }


async def test_the_sdk_client_takes_the_options() -> None:
    emulator = build_cosmos_client(EMULATOR, cosmos.KEY)
    account = build_cosmos_client(ACCOUNT, cosmos.KEY)
    try:
        local = emulator.client_connection.connection_policy
        assert local.DisableSSLVerification is True
        assert local.EnableEndpointDiscovery is False
        remote = account.client_connection.connection_policy
        assert remote.DisableSSLVerification is False
        assert remote.EnableEndpointDiscovery is True
    finally:
        await emulator.close()
        await account.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_self_signed_https_server_on_this_machine_is_reached(
    server: CosmosServer, tmp_path: Path, host: str
) -> None:
    """The local Cosmos server behind TLS with a self-signed certificate, as the
    emulator is: its account answers with its own (plain-http) port as the regional
    endpoint, which a client with endpoint discovery on would go to."""
    certificate = tls.self_signed(tmp_path)
    backend = int(server.endpoint.rstrip("/").rsplit(":", 1)[1])
    async with (
        tls.tls_front(certificate, backend) as port,
        build_cosmos_client(f"https://{host}:{port}/", server.key) as client,
    ):
        database = await client.create_database(f"tls-{uuid.uuid4().hex[:8]}")
        await create_containers(database, CONTAINERS[:2])
        names = {c["id"] async for c in database.list_containers()}
        assert names == {spec.name for spec in CONTAINERS[:2]}
        await client.delete_database(database.id)
