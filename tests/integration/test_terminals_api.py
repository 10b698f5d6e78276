"""Terminals through the HTTP API: sender identities registered per channel, their
addresses normalised and checked against what the channel sends as, and the set the
send path asks for, which follows every change at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.domain.terminals import owns
from shared.services.channels import terminals
from shared.services.deps import Deps
from shared.services.onboarding import signup

PATH = "/api/v1/terminals"


async def tenant(
    deps: Deps, api: httpx.AsyncClient, name: str = "acme"
) -> tuple[dict[str, str], str]:
    """A tenant's key header and id, with a sandbox channel ``sms-main`` and an SMTP
    channel ``mail``."""
    created = await signup.create_tenant(deps, name)
    key = {"X-API-Key": created.api_key}
    for channel in (
        {"name": "sms-main", "type": "sandbox"},
        {"name": "mail", "type": "email", "settings": {"host": "smtp.example.com"}},
    ):
        answer = await api.post("/api/v1/channels", json=channel, headers=key)
        assert answer.status_code == 201, answer.text
    return key, created.tenant["id"]


async def register(api: httpx.AsyncClient, key: dict[str, str], **fields: Any) -> Any:
    body = {"channel": "sms-main", "type": "phone", "address": "+4791234567", **fields}
    answer = await api.post(PATH, json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_a_terminal_is_registered_normalised_and_read_back(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    channel = (await api.get("/api/v1/channels/sms-main", headers=key)).json()
    created = await register(api, key, address="+47 912 34 567", display_name="Acme")
    assert created["id"].startswith("trm_")
    assert created["address"] == "+4791234567"
    assert (created["channel"], created["channel_id"]) == ("sms-main", channel["id"])
    assert (created["role"], created["status"], created["display_name"]) == (
        "sender",
        "active",
        "Acme",
    )
    assert not {"key", "tenant_id", "_etag"} & set(created)
    read = await api.get(f"{PATH}/{created['id']}", headers=key)
    assert read.status_code == 200 and read.json() == created


async def test_the_same_identity_twice_on_a_channel_is_a_conflict(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    await register(api, key)
    again = await api.post(
        PATH,
        json={"channel": "sms-main", "type": "phone", "address": "+47 91 23 45 67"},
        headers=key,
    )
    assert again.status_code == 409 and again.json()["code"] == "TERMINAL_EXISTS"
    await api.post("/api/v1/channels", json={"name": "sms-2", "type": "sandbox"}, headers=key)
    await register(api, key, channel="sms-2")  # another channel may hold it too


async def test_an_email_channel_takes_email_addresses_and_whole_domains(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    domain = await register(api, key, channel="mail", type="email", address="@ACME.example")
    assert domain["address"] == "@acme.example"
    one = await register(api, key, channel="mail", type="email", address="noreply@ACME.example")
    assert one["address"] == "noreply@acme.example"
    for body, field in (
        ({"type": "phone", "address": "+4791234567"}, "type"),
        ({"type": "email", "address": "not-an-address"}, "address"),
        ({"type": "email", "address": "@not a domain"}, "address"),
        ({"type": "email", "address": "@"}, "address"),
    ):
        refused = await api.post(PATH, json={"channel": "mail", **body}, headers=key)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["code"] == "VALIDATION_FAILED"
        assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_an_unknown_channel_is_not_found(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps, api)
    body = {"channel": "nope", "type": "phone", "address": "+4791234567"}
    created = await api.post(PATH, json=body, headers=key)
    assert created.status_code == 404 and created.json()["code"] == "CHANNEL_NOT_FOUND"
    listed = await api.get(PATH, params={"channel": "nope"}, headers=key)
    assert listed.status_code == 404 and listed.json()["code"] == "CHANNEL_NOT_FOUND"


async def test_terminals_are_listed_in_pages_and_by_channel(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    numbers = [f"+479123456{i}" for i in range(5)]
    for number in numbers:
        await register(api, key, address=number)
    await register(api, key, channel="mail", type="email", address="a@acme.example")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {
            "limit": 2,
            "channel": "sms-main",
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await api.get(PATH, params=params, headers=key)).json()
        seen += [t["address"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == numbers
    everything = (await api.get(PATH, headers=key)).json()["items"]
    assert len(everything) == 6


async def test_role_status_and_display_name_change_and_nothing_else(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    created = await register(api, key, display_name="Acme")
    url = f"{PATH}/{created['id']}"
    changed = await api.patch(url, json={"role": "both", "status": "disabled"}, headers=key)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["status"]) == ("both", "disabled")
    assert changed.json()["display_name"] == "Acme"
    cleared = (await api.patch(url, json={"display_name": None}, headers=key)).json()
    assert cleared["display_name"] is None and cleared["role"] == "both"
    for body in ({"address": "+4798765432"}, {"role": "owner"}, {"status": "deleted"}):
        refused = await api.patch(url, json=body, headers=key)
        assert refused.status_code == 422, (body, refused.text)
    assert (await api.get(url, headers=key)).json()["address"] == "+4791234567"


async def test_a_removed_terminal_is_gone(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps, api)
    created = await register(api, key)
    url = f"{PATH}/{created['id']}"
    assert (await api.delete(url, headers=key)).status_code == 204
    for method in ("GET", "DELETE", "PATCH"):
        answer = await api.request(method, url, json={"status": "active"}, headers=key)
        assert answer.status_code == 404 and answer.json()["code"] == "TERMINAL_NOT_FOUND"
    await register(api, key)  # the identity is free again


async def test_the_senders_of_a_channel_follow_every_change_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, tenant_id = await tenant(deps, api)
    channel = (await api.get("/api/v1/channels/mail", headers=key)).json()
    senders = await terminals.active_senders(deps, tenant_id, channel["id"])
    assert senders == frozenset()  # cached now, empty
    domain = await register(api, key, channel="mail", type="email", address="@acme.example")
    receiver = await register(
        api, key, channel="mail", type="email", address="in@other.example", role="receiver"
    )
    senders = await terminals.active_senders(deps, tenant_id, channel["id"])
    assert senders == {("email", "@acme.example")}
    assert owns(senders, "email", "billing@acme.example")
    assert not owns(senders, "email", "billing@sub.acme.example")
    assert not owns(senders, "email", receiver["address"])
    await api.patch(f"{PATH}/{receiver['id']}", json={"role": "both"}, headers=key)
    senders = await terminals.active_senders(deps, tenant_id, channel["id"])
    assert owns(senders, "email", "in@other.example")
    await api.patch(f"{PATH}/{domain['id']}", json={"status": "disabled"}, headers=key)
    senders = await terminals.active_senders(deps, tenant_id, channel["id"])
    assert not owns(senders, "email", "billing@acme.example")
    await api.delete(f"{PATH}/{receiver['id']}", headers=key)
    assert await terminals.active_senders(deps, tenant_id, channel["id"]) == frozenset()


async def test_another_tenants_terminals_are_not_found_nor_listed(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    mine, _ = await tenant(deps, api, "a")
    theirs, _ = await tenant(deps, api, "b")
    created = await register(api, mine)
    url = f"{PATH}/{created['id']}"
    for method, body in (("GET", None), ("PATCH", {"status": "disabled"}), ("DELETE", None)):
        answer = await api.request(method, url, json=body, headers=theirs)
        assert answer.status_code == 404, (method, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await api.get(PATH, headers=theirs)).json()["items"] == []
    await register(api, theirs)  # the same number on their own channel of that name
    assert (await api.get(url, headers=mine)).json()["status"] == "active"


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "text",
        {"channel": "sms-main", "type": "fax", "address": "+4791234567"},
        {"channel": "sms-main", "type": "phone", "address": ""},
        {"channel": "sms-main", "type": "phone", "address": "4791234567"},
        {"channel": "sms-main", "type": "phone", "address": "+4791234567", "role": "boss"},
        {"channel": "sms-main", "type": "phone", "address": "+4791234567", "extra": 1},
        {"channel": "Not A Name!", "type": "phone", "address": "+4791234567"},
        {"channel": 7, "type": "phone", "address": ["+4791234567"]},
        {"channel": "sms-main", "type": "topic", "address": "x" * 5000},
    ],
)
async def test_bad_input_is_a_problem_with_a_stable_code_and_stores_nothing(
    api: httpx.AsyncClient, deps: Deps, body: Any
) -> None:
    key, _ = await tenant(deps, api)
    answer = await api.post(PATH, json=body, headers=key)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] in ("VALIDATION_FAILED", "MALFORMED_JSON")
    assert (await api.get(PATH, headers=key)).json()["items"] == []


async def test_malformed_queries_and_paths_are_4xx(api: httpx.AsyncClient, deps: Deps) -> None:
    key, _ = await tenant(deps, api)
    for params in ({"limit": 0}, {"limit": "many"}, {"cursor": "forged"}):
        answer = await api.get(PATH, params=params, headers=key)
        assert 400 <= answer.status_code < 500, (params, answer.text)
    broken = await api.post(PATH, content=b"{", headers={**key, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["code"] == "MALFORMED_JSON"
    for odd in ("trm_nope", "trm_%00%20x", "%F0%9F%92%A9"):
        answer = await api.get(f"{PATH}/{odd}", headers=key)
        assert answer.status_code == 404 and answer.json()["code"] == "TERMINAL_NOT_FOUND"


async def test_creation_honours_idempotency_keys_and_is_audited(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _ = await tenant(deps, api)
    body = {"channel": "sms-main", "type": "phone", "address": "+4791234567"}
    keyed = {**key, "Idempotency-Key": "t-1"}
    first = await api.post(PATH, json=body, headers=keyed)
    replay = await api.post(PATH, json=body, headers=keyed)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    other = await api.post(PATH, json={**body, "address": "+4798765432"}, headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len((await api.get(PATH, headers=key)).json()["items"]) == 1
    await api.patch(f"{PATH}/{first.json()['id']}", json={"role": "both"}, headers=key)
    await api.delete(f"{PATH}/{first.json()['id']}", headers=key)
    records = (await api.get("/api/v1/audit", headers=key)).json()["items"]
    terminal_records = [r for r in records if r["target"].get("type") == "terminal"]
    assert [r["action"] for r in terminal_records] == [
        "terminal.delete",
        "terminal.update",
        "terminal.create",
    ]
    assert {r["target"]["id"] for r in terminal_records} == {first.json()["id"]}
    assert terminal_records[1]["target"]["fields"] == ["role"]
