"""The lookup cache: brief, bounded, never caching a miss, and dropped by this
process's own writes (the services that change what it holds)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.containers import CHANNELS, DIRECTORY
from shared.domain.channels import ChannelUpdate
from shared.domain.errors import NotFoundError
from shared.services.channels import channels
from shared.services.identity import authentication, directory
from shared.services.lookups import LookupCache
from shared.services.messaging import intake, messages
from shared.services.onboarding import signup
from tests.unit.conftest import World, sandbox_message


class Loader:
    def __init__(self, value: dict[str, Any] | None) -> None:
        self.value, self.calls = value, 0

    async def __call__(self) -> dict[str, Any] | None:
        self.calls += 1
        return None if self.value is None else dict(self.value)


async def test_a_found_document_is_served_from_the_cache_until_it_expires() -> None:
    now = [0.0]
    cache = LookupCache(ttl_seconds=5, clock=lambda: now[0])
    load = Loader({"id": "a", "v": 1})
    assert await cache.get("k", load) == {"id": "a", "v": 1}
    now[0] = 4.9
    copy = await cache.get("k", load)
    assert copy == {"id": "a", "v": 1} and load.calls == 1
    copy["v"] = 2  # a caller's change does not reach the cache
    assert (await cache.get("k", load))["v"] == 1  # type: ignore[index]
    now[0] = 5.0
    await cache.get("k", load)
    assert load.calls == 2


async def test_a_miss_is_never_cached_and_forget_drops_an_entry() -> None:
    cache = LookupCache(ttl_seconds=60)
    missing = Loader(None)
    assert await cache.get("k", missing) is None
    assert await cache.get("k", missing) is None
    assert missing.calls == 2
    found = Loader({"id": "a"})
    await cache.get("k", found)
    cache.forget("k")
    await cache.get("k", found)
    assert found.calls == 2


@pytest.mark.parametrize("ttl", [0, -1])
async def test_a_ttl_of_zero_turns_the_cache_off(ttl: float) -> None:
    cache = LookupCache(ttl_seconds=ttl)
    load = Loader({"id": "a"})
    await cache.get("k", load)
    await cache.get("k", load)
    assert load.calls == 2


async def test_the_cache_holds_at_most_max_entries_dropping_the_oldest() -> None:
    cache = LookupCache(ttl_seconds=60, max_entries=2)
    loads = {k: Loader({"id": k}) for k in "abc"}
    for k in "abc":
        await cache.get(k, loads[k])
    await cache.get("a", loads["a"])
    await cache.get("c", loads["c"])
    assert (loads["a"].calls, loads["c"].calls) == (2, 1)


async def test_this_process_sees_its_own_channel_changes_at_once(world: World) -> None:
    await intake.accept_message(world.deps, world.tenant_id, sandbox_message())  # cached
    await channels.update_channel(
        world.deps, world.tenant_id, "sandbox", ChannelUpdate(description="changed")
    )
    doc = await channels.find_for_sending(world.deps, world.tenant_id, "sandbox")
    assert doc is not None and doc["description"] == "changed"
    await messages.delete_channel(world.deps, world.tenant_id, "sandbox")
    with pytest.raises(NotFoundError):
        await intake.accept_message(world.deps, world.tenant_id, sandbox_message())


async def test_another_instances_change_shows_within_the_ttl(world: World) -> None:
    world.deps.lookups = LookupCache(ttl_seconds=60)
    await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    channel = await channels.find_for_sending(world.deps, world.tenant_id, "sandbox")
    assert channel is not None
    # Another instance deletes the channel: this one keeps its entry for the TTL ...
    await world.deps.store.patch(CHANNELS, world.tenant_id, channel["id"], {"status": "deleted"})
    await intake.accept_message(world.deps, world.tenant_id, sandbox_message())
    # ... and without the cache sees it at once.
    world.deps.lookups = LookupCache(ttl_seconds=0)
    with pytest.raises(NotFoundError):
        await intake.accept_message(world.deps, world.tenant_id, sandbox_message())


async def test_an_api_key_entry_is_cached_and_can_be_forgotten(world: World) -> None:
    created = await signup.create_tenant(world.deps, "acme")
    prefix = created.api_key.split("_")[1]
    await authentication.authenticate_api_key(world.deps, created.api_key)
    await world.deps.store.patch(
        DIRECTORY, created.tenant["id"], directory.api_key_id(prefix), {"status": "revoked"}
    )
    await authentication.authenticate_api_key(world.deps, created.api_key)  # still cached
    directory.forget_api_key(world.deps, prefix)
    with pytest.raises(Exception, match="not valid"):
        await authentication.authenticate_api_key(world.deps, created.api_key)
