"""What a weaker credential must never do with a stronger one, and the edges of
tokens, tenants and limits that an attacker would probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import bootstrap
from shared.config import Settings
from shared.services.deps import Deps
from shared.services.identity import authentication, rates, tenants, tokens
from shared.services.onboarding import signup

SEND = {
    "channel": "sandbox",
    "receiver": {"type": "phone", "address": "+4791234567"},
    "content": {"type": "text", "text": "hi"},
    "send_at": "2099-01-01T00:00:00Z",
}


async def app_with(
    api: httpx.AsyncClient, key: dict[str, str], scopes: list[str]
) -> dict[str, Any]:
    made = await api.post("/api/v1/apps", json={"name": "x", "scopes": scopes}, headers=key)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_weaker_app_cannot_take_over_a_stronger_one(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    apps = (await api.get("/api/v1/apps", headers=root)).json()["items"]
    strong = apps[0]["id"]  # the bootstrap app: every scope
    weak = {
        "X-API-Key": (await app_with(api, root, ["update:app", "read:app", "delete:app"]))[
            "api_key"
        ]
    }
    for method, path, body in (
        ("POST", f"/api/v1/apps/{strong}/keys/secondary", None),
        ("POST", f"/api/v1/apps/{strong}/client-secret", None),
        ("PATCH", f"/api/v1/apps/{strong}", {"status": "disabled"}),
        ("DELETE", f"/api/v1/apps/{strong}/keys/primary", None),
        ("DELETE", f"/api/v1/apps/{strong}", None),
    ):
        answer = await api.request(method, path, json=body, headers=weak)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["code"] == "SCOPE_NOT_GRANTABLE"
    assert (await api.get("/api/v1/channels", headers=root)).status_code == 200


async def test_an_app_cannot_make_owners_or_roles_beyond_its_scopes(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    everything = {
        "X-API-Key": (
            await app_with(
                api,
                root,
                sorted(
                    s
                    for s in (await api.get("/api/v1/apps", headers=root)).json()["items"][0][
                        "scopes"
                    ]
                ),
            )
        )["api_key"]
    }
    owner = await api.post(
        "/api/v1/users", json={"email": "o@example.com", "role": "owner"}, headers=everything
    )
    assert owner.status_code == 403 and owner.json()["code"] == "ROLE_TOO_HIGH"
    manager_only = {"X-API-Key": (await app_with(api, root, ["manage:user"]))["api_key"]}
    admin = await api.post(
        "/api/v1/users", json={"email": "a@example.com", "role": "admin"}, headers=manager_only
    )
    assert admin.status_code == 403


async def test_a_replayed_create_never_shows_the_key_again(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    body = {"name": "x", "scopes": ["read:app"]}
    first = await api.post("/api/v1/apps", json=body, headers={**root, "Idempotency-Key": "k1"})
    replay = await api.post("/api/v1/apps", json=body, headers={**root, "Idempotency-Key": "k1"})
    assert first.json()["api_key"] and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["api_key"] is None
    assert replay.json()["app"]["id"] == first.json()["app"]["id"]
    raw = b"".join(p.read_bytes() for p in Path(deps.settings.OCM_DATA_DIR).glob("ocm.sqlite3*"))
    assert first.json()["api_key"].split("_", 2)[2].encode() not in raw


async def test_a_suspended_parent_stops_its_children_and_children_share_its_quota(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    parent = await signup.create_tenant(deps, "parent")
    p_key = {"X-API-Key": parent.api_key}
    child = (await api.post("/api/v1/tenants", json={"name": "kid"}, headers=p_key)).json()
    c_key = {"X-API-Key": child["api_key"]}
    for key, tenant_id in ((p_key, parent.tenant["id"]), (c_key, child["tenant_id"])):
        await api.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key)
        assert tenant_id
    await tenants.set_limits(deps, parent.tenant["id"], {"messages_per_day": 2})
    assert (await api.post("/api/v1/messages", json=SEND, headers=p_key)).status_code == 202
    assert (await api.post("/api/v1/messages", json=SEND, headers=c_key)).status_code == 202
    over = await api.post("/api/v1/messages", json=SEND, headers=c_key)
    assert over.status_code == 429 and over.json()["code"] == "QUOTA_EXCEEDED"
    await tenants.set_status(deps, parent.tenant["id"], "suspended")
    stopped = await api.get("/api/v1/channels", headers=c_key)
    assert stopped.status_code == 403 and stopped.json()["code"] == "TENANT_SUSPENDED"


async def test_a_child_bootstrap_key_holds_no_more_than_its_creator(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    maker = {"X-API-Key": (await app_with(api, root, ["manage:tenant", "read:channel"]))["api_key"]}
    child = (await api.post("/api/v1/tenants", json={"name": "kid"}, headers=maker)).json()
    c_key = {"X-API-Key": child["api_key"]}
    assert (await api.get("/api/v1/channels", headers=c_key)).status_code == 200
    refused = await api.post(
        "/api/v1/channels", json={"name": "x", "type": "sandbox"}, headers=c_key
    )
    assert refused.status_code == 403


async def test_a_reissued_client_secret_retires_tokens_of_the_old_one(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    import asyncio

    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    app_id = (await app_with(api, root, ["read:app"]))["app"]["id"]
    old = (await api.post(f"/api/v1/apps/{app_id}/client-secret", headers=root)).json()
    form = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "client_secret": old["client_secret"],
    }
    token = (await api.post("/api/v1/oauth/token", data=form)).json()["access_token"]
    assert (
        await api.get("/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200
    await asyncio.sleep(1.05)  # iat has a resolution of a second
    await api.post(f"/api/v1/apps/{app_id}/client-secret", headers=root)
    assert (
        await api.get("/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401


async def test_another_instance_s_new_signing_key_is_found_at_once(tmp_path: Path) -> None:
    settings = Settings(OCM_DATA_DIR=tmp_path)
    one, two = bootstrap.build(settings), bootstrap.build(settings)
    try:
        # Instance two caches the JWKS, then instance one rotates and signs with the new key.
        await tokens.published_keys(two)
        await tokens.rotate_signing_key(one)
        await one.flush()
        kid, _ = await tokens.signing_key(one)
        assert kid in [k["kid"] for k in await tokens.published_keys(one)]
        # Two's cached JWKS lacks the new kid: asked about it, two looks again.
        assert await _knows(two, kid)
    finally:
        for deps in (one, two):
            for closer in deps.closers:
                closer()


async def _knows(deps: Deps, kid: str) -> bool:
    import jwt

    _, pem = await tokens.signing_key(deps)
    token = jwt.encode({"sub": "x"}, pem, algorithm="ES256", headers={"kid": kid})
    try:
        await authentication.authenticate_token(deps, token)
    except tokens.InvalidToken as exc:
        return "unknown signing key" not in str(exc)  # it found the key; the claims fail
    return True


async def test_users_have_rate_buckets_of_their_own(api: httpx.AsyncClient, deps: Deps) -> None:

    rules = {
        "requests_per_second": 1.0,
        "burst": 2.0,
        "messages_per_day": 0,
        "messages_per_month": 0,
    }
    for _ in range(2):
        await rates.take(deps, "tn_a", "user:usr_a", rules)
    await rates.take(deps, "tn_b", "user:usr_b", rules)  # another user: its own bucket
    with pytest.raises(rates.TooManyRequests):
        await rates.take(deps, "tn_a", "user:usr_a", rules)
