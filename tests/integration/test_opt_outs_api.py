"""Opt-outs through the HTTP API: kept under the normalised address, found by it in
any spelling (URL-encoded in a path), idempotent to add, private to the tenant; and
the checks the send path makes, one point read each."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.services.deps import Deps
from shared.services.onboarding import signup
from shared.services.receivers import opt_outs

PATH = "/api/v1/opt-outs"


async def tenant(deps: Deps, name: str = "acme") -> tuple[dict[str, str], str]:
    created = await signup.create_tenant(deps, name)
    return {"X-API-Key": created.api_key}, created.tenant["id"]


async def opt_out(api: httpx.AsyncClient, key: dict[str, str], **fields: Any) -> Any:
    body = {"channel_type": "sms", "address": "+4791234567", **fields}
    answer = await api.post(PATH, json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return answer.json()


def one(channel_type: str, address: str) -> str:
    return f"{PATH}/{channel_type}/{quote(address, safe='')}"


async def test_an_opt_out_is_kept_normalised_and_found_in_any_spelling(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps)
    created = await opt_out(api, key, address="+47 912 34 567")
    assert created["id"].startswith("opt_") and len(created["id"]) == 30
    assert created["address"] == "+4791234567"
    assert (created["channel_type"], created["reason"], created["source"]) == ("sms", "manual", {})
    for path in (
        one("sms", "+4791234567"),  # %2B
        one("sms", "+47 912 34 567"),
        f"{PATH}/sms/+4791234567",  # a literal + in a path is a plus, not a space
        f"{PATH}/SMS/%2B4791234567",
    ):
        found = await api.get(path, headers=key)
        assert found.status_code == 200, (path, found.text)
        assert found.json() == created
    other_type = await api.get(one("whatsapp", "+4791234567"), headers=key)
    assert other_type.status_code == 404 and other_type.json()["code"] == "OPT_OUT_NOT_FOUND"


async def test_an_opt_out_is_removed_once(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps)
    await opt_out(api, key, channel_type="email", address="Bob@Example.COM")
    assert (await api.delete(f"{PATH}/email/BOB@example.com", headers=key)).status_code == 204
    for method in ("GET", "DELETE"):
        gone = await api.request(method, one("email", "bob@example.com"), headers=key)
        assert gone.status_code == 404 and gone.json()["code"] == "OPT_OUT_NOT_FOUND"
        assert gone.headers["content-type"] == "application/problem+json"


async def test_email_addresses_are_lower_cased_whole(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps)
    created = await opt_out(api, key, channel_type="email", address="  Bob@Example.COM ")
    assert created["address"] == "bob@example.com"
    found = await api.get(one("email", "BOB@EXAMPLE.COM"), headers=key)
    assert found.status_code == 200 and found.json()["id"] == created["id"]


async def test_an_address_with_a_slash_is_one_path_segment(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps)
    address = "billing/eu+x@example.com"  # "/" and "+" are valid in a local part
    created = await opt_out(api, key, channel_type="email", address=address)
    assert created["address"] == address
    assert (await api.get(one("email", address), headers=key)).json() == created
    assert (await api.delete(one("email", address), headers=key)).status_code == 204


async def test_only_types_whose_receivers_opt_out_take_opt_outs(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Sends are checked against opt-outs on SMS, WhatsApp and e-mail only; an opt-out
    elsewhere would never be enforced, so it is refused rather than kept."""
    key, _ = await tenant(deps)
    for channel_type in ("push", "telegram", "sandbox", "chat"):
        refused = await api.post(
            "/api/v1/opt-outs",
            json={"channel_type": channel_type, "address": "4242"},
            headers=key,
        )
        assert refused.status_code == 422, channel_type
        assert refused.json()["code"] == "CHANNEL_TYPE_UNKNOWN"


async def test_opting_out_twice_keeps_the_first(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps)
    first = await opt_out(api, key, reason="complaint")
    second = await opt_out(api, key, address="+47 91 23 45 67", channel_type="SMS")
    assert second == first
    keyed = {**key, "Idempotency-Key": "o-1"}
    body = {"channel_type": "sms", "address": "+4798765432"}
    made = await api.post(PATH, json=body, headers=keyed)
    replay = await api.post(PATH, json=body, headers=keyed)
    assert replay.json() == made.json() and replay.headers["idempotent-replayed"] == "true"
    assert len((await api.get(PATH, headers=key)).json()["items"]) == 2


async def test_opt_outs_are_listed_in_pages_and_by_channel_type(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps)
    numbers = [f"+479123456{i}" for i in range(5)]
    for number in numbers:
        await opt_out(api, key, address=number)
    await opt_out(api, key, channel_type="email", address="a@example.com")
    seen: list[dict[str, str]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {
            "limit": 2,
            "channel_type": "sms",
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await api.get(PATH, params=params, headers=key)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Every one once, oldest first (opt-outs made in the same millisecond by their id).
    assert sorted(o["address"] for o in seen) == numbers
    order = [(o["created_at"], o["id"]) for o in seen]
    assert order == sorted(order)
    assert len((await api.get(PATH, headers=key)).json()["items"]) == 6


async def test_another_tenant_neither_sees_nor_removes_them(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    mine, my_id = await tenant(deps, "a")
    theirs, their_id = await tenant(deps, "b")
    created = await opt_out(api, mine)
    for method in ("GET", "DELETE"):
        answer = await api.request(method, one("sms", "+4791234567"), headers=theirs)
        assert answer.status_code == 404, (method, answer.text)
    assert (await api.get(PATH, headers=theirs)).json()["items"] == []
    assert not await opt_outs.is_opted_out(deps, their_id, "sms", "+4791234567")
    own = await opt_out(api, theirs)
    assert own["id"] != created["id"]
    assert (await api.get(one("sms", "+4791234567"), headers=mine)).json() == created
    assert await opt_outs.is_opted_out(deps, my_id, "sms", "+4791234567")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"channel_type": "fax", "address": "+4791234567"}, "CHANNEL_TYPE_UNKNOWN", "channel_type"),
        ({"channel_type": "sms", "address": "4791234567"}, "VALIDATION_FAILED", "address"),
        ({"channel_type": "sms", "address": "bob@example.com"}, "VALIDATION_FAILED", "address"),
        ({"channel_type": "email", "address": "+4791234567"}, "VALIDATION_FAILED", "address"),
        ({"channel_type": "sms", "address": "   "}, "VALIDATION_FAILED", "address"),
        ({"channel_type": "sms", "address": ""}, "VALIDATION_FAILED", "address"),
        ({"channel_type": "sms", "address": "+4791234567", "reason": "whim"}, None, "reason"),
        ({"channel_type": "../x", "address": "+4791234567"}, None, "channel_type"),
        ({"channel_type": "sms", "address": "+4791234567", "note": 1}, None, "note"),
        ({"channel_type": 1, "address": ["+4791234567"]}, None, None),
        ({}, None, None),
        ([], None, None),
    ],
)
async def test_bad_input_is_a_problem_with_a_stable_code_and_stores_nothing(
    api: httpx.AsyncClient, deps: Deps, body: Any, code: str | None, field: str | None
) -> None:
    key, _ = await tenant(deps)
    answer = await api.post(PATH, json=body, headers=key)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == (code or "VALIDATION_FAILED")
    if field:
        assert field in [e["field"] for e in answer.json()["errors"]]
    assert (await api.get(PATH, headers=key)).json()["items"] == []


async def test_malformed_requests_are_4xx(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps)
    broken = await api.post(PATH, content=b"{", headers={**key, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["code"] == "MALFORMED_JSON"
    for params in ({"limit": 0}, {"limit": "x"}, {"cursor": "forged"}, {"channel_type": "x" * 40}):
        answer = await api.get(PATH, params=params, headers=key)
        assert 400 <= answer.status_code < 500, (params, answer.text)
    for path in (one("sms", "not a number"), one("nope", "x"), one("sms", "%00"), f"{PATH}/sms/"):
        answer = await api.get(path, headers=key)
        assert answer.status_code == 404, (path, answer.text)


async def test_the_send_path_checks_by_point_reads(api: httpx.AsyncClient, deps: Deps) -> None:
    _, tenant_id = await tenant(deps)
    added = await opt_outs.add(
        deps, tenant_id, "sms", "+47 912 34 567", "keyword", message_id="msg_1", keyword="STOP"
    )
    assert added["source"] == {"message_id": "msg_1", "keyword": "STOP"}
    assert await opt_outs.is_opted_out(deps, tenant_id, "sms", "+4791234567")
    assert not await opt_outs.is_opted_out(deps, tenant_id, "sms", "garbage")
    batch = ["+4791234567", "+47 912 34 567", "+4798765432", "+4791234567", "garbage"]
    assert await opt_outs.opted_out(deps, tenant_id, "sms", batch) == {
        "+4791234567",
        "+47 912 34 567",
    }
    many = [f"+4791{n:06d}" for n in range(100)]
    assert await opt_outs.opted_out(deps, tenant_id, "sms", many) == set()
    assert await opt_outs.remove(deps, tenant_id, "sms", "+4791234567")
    assert not await opt_outs.remove(deps, tenant_id, "sms", "+4791234567")
    assert await opt_outs.opted_out(deps, tenant_id, "sms", batch) == set()


async def test_adding_and_removing_by_hand_is_audited_without_the_address(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps)
    created = await opt_out(api, key)
    await api.delete(one("sms", "+4791234567"), headers=key)
    records = (await api.get("/api/v1/audit", headers=key)).json()["items"]
    mine = [r for r in records if r["action"].startswith("opt_out.")]
    assert [r["action"] for r in mine] == ["opt_out.remove", "opt_out.add"]
    assert {r["target"]["id"] for r in mine} == {created["id"]}
    assert "4791234567" not in str(mine)
