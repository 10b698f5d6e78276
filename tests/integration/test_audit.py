"""The audit log records every management action — who, with which key, what, when,
from where — per tenant, and never a secret."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.api.app import create_app
from shared.services.deps import Deps
from shared.services.identity import tenants
from shared.services.onboarding import signup


@pytest.fixture
async def api(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(lambda: deps), client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
        yield client


async def test_management_actions_are_recorded_with_actor_and_address(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    prefix = created.api_key.split("_")[1]
    await api.post("/api/v1/channels", json={"name": "mail", "type": "sandbox"}, headers=key)
    await api.patch("/api/v1/channels/mail", json={"description": "d"}, headers=key)
    app = (
        await api.post(
            "/api/v1/apps",
            json={"name": "crm", "scopes": ["read:message"]},
            headers={**key, "X-Forwarded-For": "198.51.100.9, 10.0.0.1"},
        )
    ).json()
    rotated = await api.post(f"/api/v1/apps/{app['app']['id']}/keys/secondary", headers=key)
    await api.delete(f"/api/v1/apps/{app['app']['id']}/keys/secondary", headers=key)
    await api.patch(f"/api/v1/apps/{app['app']['id']}", json={"name": "crm2"}, headers=key)
    await api.delete("/api/v1/channels/mail", headers=key)
    await api.get("/api/v1/channels", headers=key)  # reads are not management actions
    await tenants.set_status(deps, created.tenant["id"], "suspended")
    await tenants.set_status(deps, created.tenant["id"], "active")

    listed = await api.get("/api/v1/audit", headers=key)
    assert listed.status_code == 200
    records = listed.json()["items"]
    assert [r["action"] for r in records] == [
        "tenant.resume",
        "tenant.suspend",
        "channel.delete",
        "app.update",
        "app.key.revoke",
        "app.key.rotate",
        "app.create",
        "channel.update",
        "channel.create",
    ]
    by_action = {r["action"]: r for r in records}
    create = by_action["channel.create"]
    assert create["actor"]["credential"] == f"key_{prefix}"
    assert create["address"] == "203.0.113.7"
    assert create["target"]["name"] == "mail"
    # X-Forwarded-For is the client's own say unless a trusted proxy appends to it.
    assert by_action["app.create"]["address"] == "203.0.113.7"
    assert by_action["channel.update"]["target"]["fields"] == ["description"]
    assert by_action["tenant.suspend"]["actor"]["credential"] == "operator"
    assert rotated.json()["api_key"] not in listed.text  # the key itself, never
    assert rotated.json()["api_key"].split("_", 2)[2] not in listed.text

    only = await api.get("/api/v1/audit", params={"action": "app.create"}, headers=key)
    assert [r["action"] for r in only.json()["items"]] == ["app.create"]


async def test_credentials_are_audited_by_field_name_only(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    await api.post(
        "/api/v1/channels",
        json={
            "name": "mail",
            "type": "email",
            "provider": "smtp",
            "settings": {"host": "smtp.example.com"},
        },
        headers=key,
    )
    secret = "hunter2-very-secret"
    put = await api.put(
        "/api/v1/channels/mail/credentials",
        json={"username": "u", "password": secret},
        headers=key,
    )
    assert put.status_code == 204, put.text
    listed = (await api.get("/api/v1/audit", headers=key)).text
    assert "channel.credentials.set" in listed and '"password"' in listed
    assert secret not in listed


async def test_a_tenant_sees_only_its_own_records_and_needs_the_scope(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    a = {"X-API-Key": (await signup.create_tenant(deps, "a")).api_key}
    b = {"X-API-Key": (await signup.create_tenant(deps, "b")).api_key}
    await api.post("/api/v1/channels", json={"name": "mail", "type": "sandbox"}, headers=a)
    assert (await api.get("/api/v1/audit", headers=b)).json()["items"] == []
    weak = (
        await api.post("/api/v1/apps", json={"name": "x", "scopes": ["read:app"]}, headers=a)
    ).json()["api_key"]
    refused = await api.get("/api/v1/audit", headers={"X-API-Key": weak})
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_MISSING"


async def test_behind_a_trusted_proxy_the_address_is_the_hop_it_appended(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    deps.settings.OCM_TRUST_FORWARDED_FOR = True
    key = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    await api.post(
        "/api/v1/channels",
        json={"name": "mail", "type": "sandbox"},
        headers={**key, "X-Forwarded-For": "6.6.6.6, 198.51.100.9"},  # spoofed, appended
    )
    [record] = (await api.get("/api/v1/audit", headers=key)).json()["items"]
    assert record["address"] == "198.51.100.9"
