"""API keys: shown once, stored as a SHA-256, resolved to their tenant."""

from __future__ import annotations

import hashlib

import pytest

from shared.containers import DIRECTORY
from shared.domain.errors import Unauthorized, ValidationFailed
from shared.domain.ids import hash_secret
from shared.services.identity import authentication, directory
from shared.services.onboarding import signup
from shared.services.onboarding.signup import NewTenant
from tests.fakes import FakeDocumentStore
from tests.unit.conftest import World


async def new_tenant(world: World, name: str = "globex") -> NewTenant:
    return await signup.create_tenant(world.deps, name)


def parts(key: str) -> tuple[str, str]:
    _, prefix, secret = key.split("_", 2)
    return prefix, secret


def stored_bytes(world: World) -> bytes:
    store = world.deps.store
    assert isinstance(store, FakeDocumentStore)
    return b"\n".join(s.body for table in store._data.values() for s in table.values())


async def refused(world: World, key: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await authentication.authenticate_api_key(world.deps, key)
    return caught.value


async def test_a_valid_key_resolves_to_its_tenant_and_app(world: World) -> None:
    created = await new_tenant(world)
    principal = await authentication.authenticate_api_key(world.deps, created.api_key)
    assert principal.tenant_id == created.tenant["id"]
    assert principal.app_id.startswith("app_")
    assert principal.credential_id == directory.api_key_id(parts(created.api_key)[0])
    assert principal.has("send:message")


async def test_each_tenants_key_resolves_to_that_tenant(world: World) -> None:
    one, two = await new_tenant(world, "one"), await new_tenant(world, "two")
    for created in (one, two):
        principal = await authentication.authenticate_api_key(world.deps, created.api_key)
        assert principal.tenant_id == created.tenant["id"]


async def test_a_wrong_secret_is_refused(world: World) -> None:
    prefix, secret = parts((await new_tenant(world)).api_key)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    err = await refused(world, f"ocm_{prefix}_{wrong}")
    assert (err.code, err.status) == ("INVALID_CREDENTIALS", 401)


async def test_an_unknown_prefix_is_refused(world: World) -> None:
    _, secret = parts((await new_tenant(world)).api_key)
    assert (await refused(world, f"ocm_{'0' * 12}_{secret}")).code == "INVALID_CREDENTIALS"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "ocm",
        "ocm__",
        "nope_0123456789ab_" + "s" * 43,  # wrong scheme
        "ocm_0123456789ab_short",  # a secret of fewer than 128 bits
        "ocm_0123_" + "s" * 43,  # a prefix of the wrong length
        "ocm_0123456789ab",  # no secret
    ],
)
async def test_a_malformed_key_is_refused(world: World, key: str) -> None:
    assert (await refused(world, key)).code == "INVALID_CREDENTIALS"


async def test_every_refusal_reads_the_same(world: World) -> None:
    prefix, secret = parts((await new_tenant(world)).api_key)
    details = {
        (await refused(world, key)).detail
        for key in (f"ocm_{prefix}_{secret}x", f"ocm_{'f' * 12}_{secret}", "garbage")
    }
    assert len(details) == 1


async def test_a_revoked_key_is_refused(world: World) -> None:
    created = await new_tenant(world)
    prefix, _ = parts(created.api_key)
    await world.deps.store.patch(
        DIRECTORY, created.tenant["id"], directory.api_key_id(prefix), {"status": "revoked"}
    )
    assert (await refused(world, created.api_key)).code == "INVALID_CREDENTIALS"


async def test_the_directory_keeps_only_a_sha256_of_the_secret(world: World) -> None:
    created = await new_tenant(world)
    prefix, secret = parts(created.api_key)
    entry = await directory.find_api_key(world.deps, prefix)
    assert entry is not None
    assert entry["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.encode() not in stored_bytes(world)
    assert created.api_key.encode() not in stored_bytes(world)


async def test_a_tenant_name_is_trimmed_and_required(world: World) -> None:
    created = await new_tenant(world, "  Globex  ")
    assert created.tenant["name"] == "Globex"
    with pytest.raises(ValidationFailed):
        await new_tenant(world, "   ")


async def test_a_secret_containing_underscores_is_read_whole(world: World) -> None:
    prefix, secret = "0123456789ab", "under_score_secret_of_enough_bits"
    entry = directory.api_key_entry(
        prefix, world.tenant_id, "app_1", hash_secret(secret), ["*"], "2030-01-01T00:00:00.000Z"
    )
    await world.deps.store.create(DIRECTORY, entry)
    principal = await authentication.authenticate_api_key(world.deps, f"ocm_{prefix}_{secret}")
    assert principal.tenant_id == world.tenant_id
    assert (await refused(world, f"ocm_{prefix}_under_score")).code == "INVALID_CREDENTIALS"
