"""Client applications through the HTTP API: unlimited apps, granted scopes, two keys
rotated independently, revocation, and tenant suspension."""

from __future__ import annotations

from typing import Any

import httpx

from shared.services.deps import Deps
from shared.services.identity import tenants
from shared.services.onboarding import signup

BASE = "http://ocm"


async def tenant_key(deps: Deps, name: str = "acme") -> str:
    return (await signup.create_tenant(deps, name)).api_key


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def new_app(api: httpx.AsyncClient, key: str, scopes: list[str], **more: Any) -> Any:
    answer = await api.post(
        "/api/v1/apps", json={"name": "crm", "scopes": scopes, **more}, headers=auth(key)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def status_of(api: httpx.AsyncClient, key: str, path: str = "/api/v1/channels") -> int:
    return (await api.get(path, headers=auth(key))).status_code


async def test_an_app_gets_its_own_key_and_only_its_scopes(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    created = await new_app(api, root, ["read:channel", "read:message"])
    key, app = created["api_key"], created["app"]
    assert key.startswith(f"ocm_{app['keys']['primary']['prefix']}_")
    assert app["keys"]["secondary"] is None and app["scopes"] == ["read:channel", "read:message"]
    assert await status_of(api, key) == 200
    refused = await api.post(
        "/api/v1/channels", json={"name": "x", "type": "sandbox"}, headers=auth(key)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_MISSING"
    shown = (await api.get(f"/api/v1/apps/{app['id']}", headers=auth(root))).json()
    assert key.split("_", 2)[2] not in str(shown)  # the secret is shown once, never again


async def test_apps_are_unlimited_and_listed_with_the_bootstrap_app(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    for i in range(30):
        await new_app(api, root, ["read:message"], name=f"app-{i}")
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/apps", params=params, headers=auth(root))).json()
        names += [a["name"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names[0] == "bootstrap" and len(names) == 31


async def test_a_credential_cannot_grant_more_than_it_holds(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    admin = (await new_app(api, root, ["create:app", "read:app"]))["api_key"]
    refused = await api.post(
        "/api/v1/apps", json={"name": "x", "scopes": ["send:message"]}, headers=auth(admin)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_NOT_GRANTABLE"
    assert (await new_app(api, admin, ["read:app"]))["app"]["scopes"] == ["read:app"]
    unknown = await api.post(
        "/api/v1/apps", json={"name": "x", "scopes": ["root:everything"]}, headers=auth(root)
    )
    assert unknown.status_code == 422


async def test_keys_rotate_one_slot_at_a_time_and_revoke(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    created = await new_app(api, root, ["read:channel"])
    app_id, first = created["app"]["id"], created["api_key"]
    secondary = (await api.post(f"/api/v1/apps/{app_id}/keys/secondary", headers=auth(root))).json()
    assert secondary["slot"] == "secondary"
    assert await status_of(api, first) == 200 and await status_of(api, secondary["api_key"]) == 200

    rotated = await api.post(f"/api/v1/apps/{app_id}/keys/primary", headers=auth(root))
    assert rotated.status_code == 201
    second = rotated.json()["api_key"]
    gone = await api.get("/api/v1/channels", headers=auth(first))
    assert gone.status_code == 401 and "WWW-Authenticate" in gone.headers
    assert await status_of(api, second) == 200
    assert await status_of(api, secondary["api_key"]) == 200

    revoked = await api.delete(f"/api/v1/apps/{app_id}/keys/secondary", headers=auth(root))
    assert revoked.status_code == 200 and revoked.json()["keys"]["secondary"] is None
    assert await status_of(api, secondary["api_key"]) == 401
    again = await api.delete(f"/api/v1/apps/{app_id}/keys/secondary", headers=auth(root))
    assert again.status_code == 404 and again.json()["code"] == "KEY_NOT_FOUND"
    bad_slot = await api.post(f"/api/v1/apps/{app_id}/keys/tertiary", headers=auth(root))
    assert bad_slot.status_code == 422


async def test_scope_and_status_changes_reach_the_keys_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    created = await new_app(api, root, ["read:channel"])
    app_id, key = created["app"]["id"], created["api_key"]
    assert await status_of(api, key) == 200  # now cached
    narrowed = await api.patch(
        f"/api/v1/apps/{app_id}", json={"scopes": ["read:message"]}, headers=auth(root)
    )
    assert narrowed.status_code == 200
    assert await status_of(api, key) == 403
    await api.patch(f"/api/v1/apps/{app_id}", json={"status": "disabled"}, headers=auth(root))
    assert await status_of(api, key, "/api/v1/messages") == 401
    await api.patch(f"/api/v1/apps/{app_id}", json={"status": "active"}, headers=auth(root))
    assert await status_of(api, key, "/api/v1/messages") == 200
    deleted = await api.delete(f"/api/v1/apps/{app_id}", headers=auth(root))
    assert deleted.status_code == 204
    assert await status_of(api, key, "/api/v1/messages") == 401
    assert (await api.get(f"/api/v1/apps/{app_id}", headers=auth(root))).status_code == 404


async def test_another_tenants_app_is_not_found(api: httpx.AsyncClient, deps: Deps) -> None:
    mine, theirs = await tenant_key(deps, "a"), await tenant_key(deps, "b")
    app_id = (await new_app(api, mine, ["read:channel"]))["app"]["id"]
    for method, path, body in (
        ("GET", f"/api/v1/apps/{app_id}", None),
        ("PATCH", f"/api/v1/apps/{app_id}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/apps/{app_id}", None),
        ("POST", f"/api/v1/apps/{app_id}/keys/secondary", None),
        ("DELETE", f"/api/v1/apps/{app_id}/keys/primary", None),
    ):
        answer = await api.request(method, path, json=body, headers=auth(theirs))
        assert answer.status_code == 404, (method, path, answer.text)
    listed = (await api.get("/api/v1/apps", headers=auth(theirs))).json()["items"]
    assert app_id not in [a["id"] for a in listed]
    assert (await api.get(f"/api/v1/apps/{app_id}", headers=auth(mine))).json()["name"] == "crm"


async def test_a_suspended_tenant_gets_403_until_resumed(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key, tenant_id = created.api_key, created.tenant["id"]
    assert await status_of(api, key) == 200
    await tenants.set_status(deps, tenant_id, "suspended")
    refused = await api.get("/api/v1/channels", headers=auth(key))
    assert refused.status_code == 403 and refused.json()["code"] == "TENANT_SUSPENDED"
    await tenants.set_status(deps, tenant_id, "active")
    assert await status_of(api, key) == 200


async def test_the_bootstrap_key_is_an_ordinary_rotatable_app_key(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = await tenant_key(deps)
    (bootstrap_app,) = (await api.get("/api/v1/apps", headers=auth(root))).json()["items"]
    assert bootstrap_app["name"] == "bootstrap" and "create:app" in bootstrap_app["scopes"]
    rotated = await api.post(f"/api/v1/apps/{bootstrap_app['id']}/keys/primary", headers=auth(root))
    new_root = rotated.json()["api_key"]
    assert await status_of(api, root) == 401 and await status_of(api, new_root) == 200


async def test_one_credential_never_replays_anothers_idempotent_answer(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 8: a narrow app replaying the bootstrap key's
    ``Idempotency-Key`` got 201 and the wide app's answer, skipping the grant check."""
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    narrow_app = await api.post(
        "/api/v1/apps",
        json={"name": "narrow", "scopes": ["create:app", "send:message"]},
        headers=root,
    )
    narrow = {"X-API-Key": narrow_app.json()["api_key"]}
    wide = {"name": "wide", "scopes": ["manage:tenant"]}
    same_key = {"Idempotency-Key": "shared-key-1"}
    first = await api.post("/api/v1/apps", json=wide, headers={**root, **same_key})
    assert first.status_code == 201
    replayed = await api.post("/api/v1/apps", json=wide, headers={**narrow, **same_key})
    assert replayed.status_code == 403, replayed.text
    assert replayed.json()["code"] == "SCOPE_NOT_GRANTABLE"
    assert "idempotent-replayed" not in replayed.headers
    again = await api.post("/api/v1/apps", json=wide, headers={**root, **same_key})
    assert again.headers["idempotent-replayed"] == "true"  # its own key still replays
