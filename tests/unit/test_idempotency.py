"""Idempotency-Key: one answer per key and body, per tenant and route, for a while."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.domain.errors import ConflictError, ValidationFailed
from shared.services import idempotency
from shared.services.idempotency import Claim, Replay, body_hash
from tests.unit.conftest import SETTINGS, World

ROUTE = "POST /api/v1/messages"
BODY = {"channel": "sandbox", "content": {"type": "text", "text": "hi"}}


async def begin(
    world: World,
    key: str = "k-1",
    body: Any = BODY,
    *,
    tenant: str | None = None,
    route: str = ROUTE,
    holder: str = "app_1",
) -> Replay | Claim:
    return await idempotency.begin(
        world.deps, tenant or world.tenant_id, route, key, body_hash(body), holder=holder
    )


async def answered(world: World, key: str = "k-1", body: Any = BODY) -> None:
    claim = await begin(world, key, body)
    assert isinstance(claim, Claim)
    await idempotency.complete(world.deps, claim, 202, {"id": "msg_1"})


async def conflict(world: World, **kw: Any) -> str:
    with pytest.raises(ConflictError) as caught:
        await begin(world, **kw)
    return caught.value.code


async def test_a_first_request_claims_the_key(world: World) -> None:
    assert isinstance(await begin(world), Claim)


async def test_the_same_key_and_body_replay_the_first_answer(world: World) -> None:
    await answered(world)
    assert await begin(world) == Replay(202, {"id": "msg_1"})


async def test_the_same_key_with_another_body_is_refused(world: World) -> None:
    await answered(world)
    assert await conflict(world, body={**BODY, "subject": "other"}) == "IDEMPOTENCY_KEY_REUSED"


async def test_the_same_key_while_the_first_is_in_flight_is_refused(world: World) -> None:
    await begin(world)
    with pytest.raises(ConflictError) as caught:
        await begin(world)
    assert caught.value.code == "IDEMPOTENCY_KEY_IN_USE"
    assert caught.value.headers == {"Retry-After": "1"}


async def test_another_body_while_in_flight_is_a_reuse(world: World) -> None:
    await begin(world)
    assert await conflict(world, body={"other": 1}) == "IDEMPOTENCY_KEY_REUSED"


async def test_an_in_flight_claim_is_still_held_just_before_two_minutes(world: World) -> None:
    await begin(world)
    world.clock.advance(timedelta(minutes=2) - timedelta(seconds=1))
    assert await conflict(world) == "IDEMPOTENCY_KEY_IN_USE"


async def test_an_in_flight_claim_older_than_two_minutes_is_taken_over(world: World) -> None:
    await begin(world)
    world.clock.advance(timedelta(minutes=2, seconds=1))
    claim = await begin(world)
    assert isinstance(claim, Claim)
    await idempotency.complete(world.deps, claim, 201, {"ok": True})
    assert await begin(world) == Replay(201, {"ok": True})


async def test_an_abandoned_claim_frees_the_key(world: World) -> None:
    claim = await begin(world)
    assert isinstance(claim, Claim)
    await idempotency.abandon(world.deps, claim)
    assert isinstance(await begin(world), Claim)


def test_the_body_hash_ignores_key_order_and_whitespace() -> None:
    one = {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    two = {"b": {"d": "x", "c": [1, 2]}, "a": 1}
    assert body_hash(one) == body_hash(two)
    assert body_hash(one) != body_hash({**one, "a": 2})
    assert body_hash({"c": [1, 2]}) != body_hash({"c": [2, 1]})  # list order matters


async def test_a_body_with_reordered_keys_replays(world: World) -> None:
    await answered(world, body={"a": 1, "b": 2})
    assert isinstance(await begin(world, body={"b": 2, "a": 1}), Replay)


async def test_keys_are_scoped_per_tenant(world: World) -> None:
    await answered(world)
    assert isinstance(await begin(world, tenant="tn_other"), Claim)


async def test_keys_are_scoped_per_route(world: World) -> None:
    await answered(world)
    assert isinstance(await begin(world, route="POST /api/v1/channels"), Claim)


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak", "nul\x00", "tab\there"])
async def test_an_invalid_key_is_refused(world: World, key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await begin(world, key)
    assert caught.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert [e.field for e in caught.value.errors] == ["Idempotency-Key"]


@pytest.mark.parametrize("key", ["x", "x" * 255, "9f1c-4e2a b"])
async def test_a_key_of_1_to_255_printable_characters_is_accepted(world: World, key: str) -> None:
    assert isinstance(await begin(world, key), Claim)


async def test_an_answer_is_replayed_until_the_record_expires(world: World) -> None:
    await answered(world)
    ttl = SETTINGS.OCM_IDEMPOTENCY_TTL_SECONDS
    world.clock.advance(ttl - 1)
    assert isinstance(await begin(world), Replay)
    world.clock.advance(2)
    assert isinstance(await begin(world, body={"another": "body"}), Claim)
