"""KeyVaultSecretStore at its SDK boundary: the SecretStore contract, the cache, name
rules and log hygiene, over a fake SecretClient answering with the SDK's own models."""

from __future__ import annotations

import asyncio
import logging

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets.aio import SecretClient

from shared.adapters.azure.keyvault import KeyVaultSecretStore, build_secret_client
from tests.azure_fakes import VAULT_URL, FakeCredential, FakeSecretClient

NAME = "channel-ch-01jabcdefghjkmnpqrstvwxyz0-credentials"
VALUE = '{"password": "s3cr3t-value-that-must-not-be-logged"}'
TTL = 300.0


class Ticker:
    """The store's clock: seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> FakeSecretClient:
    return FakeSecretClient()


@pytest.fixture
def clock() -> Ticker:
    return Ticker()


@pytest.fixture
def store(client: FakeSecretClient, clock: Ticker) -> KeyVaultSecretStore:
    return KeyVaultSecretStore(client, ttl_seconds=TTL, clock=clock)  # type: ignore[arg-type]


def gets(client: FakeSecretClient) -> int:
    return sum(1 for method, _ in client.calls if method == "get_secret")


# --- the SecretStore contract -------------------------------------------------------------


async def test_a_secret_reads_back(store: KeyVaultSecretStore, client: FakeSecretClient) -> None:
    await store.set(NAME, VALUE)
    assert client.secrets[NAME] == VALUE
    assert await store.get(NAME) == VALUE


async def test_a_missing_secret_reads_as_none(store: KeyVaultSecretStore) -> None:
    assert await store.get("channel-missing-credentials") is None


async def test_setting_again_overwrites(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    await store.set(NAME, "one")
    await store.set(NAME, "two")
    assert await store.get(NAME) == "two"
    assert client.secrets[NAME] == "two"


async def test_a_deleted_secret_is_gone_and_deleting_twice_is_fine(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    await store.set(NAME, VALUE)
    await store.delete(NAME)
    await store.delete(NAME)
    assert await store.get(NAME) is None
    assert NAME not in client.secrets


# --- the cache ----------------------------------------------------------------------------


async def test_a_second_read_within_the_ttl_asks_the_vault_nothing(
    client: FakeSecretClient, store: KeyVaultSecretStore, clock: Ticker
) -> None:
    client.secrets[NAME] = VALUE
    assert await store.get(NAME) == VALUE
    clock.now += TTL - 1
    assert await store.get(NAME) == VALUE
    assert gets(client) == 1
    clock.now += 1
    assert await store.get(NAME) == VALUE
    assert gets(client) == 2


async def test_a_write_made_here_is_read_back_from_the_cache(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    await store.set(NAME, "one")
    assert await store.get(NAME) == "one"
    await store.set(NAME, "two")
    assert await store.get(NAME) == "two"
    assert gets(client) == 0


async def test_a_write_made_elsewhere_is_seen_once_the_ttl_ran_out(
    client: FakeSecretClient, store: KeyVaultSecretStore, clock: Ticker
) -> None:
    other = KeyVaultSecretStore(client, ttl_seconds=TTL, clock=clock)  # type: ignore[arg-type]
    await store.set(NAME, "one")
    await other.set(NAME, "two")
    assert await store.get(NAME) == "one"  # stale for at most the TTL
    clock.now += TTL
    assert await store.get(NAME) == "two"


async def test_a_miss_is_not_cached(store: KeyVaultSecretStore, client: FakeSecretClient) -> None:
    assert await store.get(NAME) is None
    client.secrets[NAME] = VALUE  # written by another instance
    assert await store.get(NAME) == VALUE


async def test_a_delete_made_here_is_seen_at_once(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    client.secrets[NAME] = VALUE
    assert await store.get(NAME) == VALUE
    await store.delete(NAME)
    assert await store.get(NAME) is None


async def test_a_read_that_overlapped_a_write_does_not_cache_the_older_value(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    client.secrets[NAME] = "old"
    client.gate = asyncio.Event()
    reading = asyncio.create_task(store.get(NAME))
    await asyncio.sleep(0)  # the read has fetched "old" and waits on the wire
    await store.set(NAME, "new")
    client.gate.set()
    assert await reading == "old"  # it began before the write
    client.gate = None
    assert await store.get(NAME) == "new"


async def test_a_failed_write_drops_the_cached_value(
    store: KeyVaultSecretStore, client: FakeSecretClient
) -> None:
    await store.set(NAME, "one")
    client.fail_next = HttpResponseError("the vault is unavailable")
    with pytest.raises(HttpResponseError):
        await store.set(NAME, "two")
    assert await store.get(NAME) == "one"  # what the vault holds, asked again
    assert gets(client) == 1


async def test_a_zero_ttl_turns_the_cache_off(client: FakeSecretClient, clock: Ticker) -> None:
    store = KeyVaultSecretStore(client, ttl_seconds=0, clock=clock)  # type: ignore[arg-type]
    await store.set(NAME, VALUE)
    assert await store.get(NAME) == VALUE
    assert await store.get(NAME) == VALUE
    assert gets(client) == 2


# --- names, logs, closing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "tn_a--smtp-password", "has space", "dotted.name", "a" * 128, "ünïcode"]
)
async def test_a_name_key_vault_would_refuse_is_refused_here_first(
    store: KeyVaultSecretStore, client: FakeSecretClient, name: str
) -> None:
    for call in (store.get(name), store.set(name, VALUE), store.delete(name)):
        with pytest.raises(ValueError, match="not a Key Vault secret name") as refused:
            await call
        assert VALUE not in str(refused.value)
    assert client.calls == []


async def test_names_of_up_to_127_letters_digits_and_dashes_are_taken(
    store: KeyVaultSecretStore,
) -> None:
    longest = "A-9" + "z" * 124
    await store.set(longest, VALUE)
    assert await store.get(longest) == VALUE


async def test_no_secret_value_reaches_the_logs(
    store: KeyVaultSecretStore, client: FakeSecretClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await store.set(NAME, VALUE)
    await store.get(NAME)
    client.secrets[NAME] = VALUE + "-rotated"
    await KeyVaultSecretStore(client).get(NAME)  # type: ignore[arg-type]
    await store.delete(NAME)
    await store.delete(NAME)
    assert NAME in caplog.text
    assert "s3cr3t" not in caplog.text


async def test_close_closes_the_client_and_the_credential_it_owns(
    client: FakeSecretClient,
) -> None:
    credential = FakeCredential()
    store = KeyVaultSecretStore(client, credential=credential)  # type: ignore[arg-type]
    await store.close()
    assert client.closed and credential.closed


async def test_the_client_is_built_for_the_vault_with_the_credential_given() -> None:
    built = build_secret_client(VAULT_URL, FakeCredential())  # type: ignore[arg-type]
    assert isinstance(built, SecretClient)
    assert built.vault_url == VAULT_URL
    await built.close()
