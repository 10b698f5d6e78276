"""OAuth2 client credentials: the token endpoint (RFC 6749 §4.4, §5.2), bearer tokens
on every route, the JWKS, key rotation, and everything that stops a token."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest

from shared.services.deps import Deps
from shared.services.identity import tenants, tokens
from shared.services.onboarding import signup

TOKEN = "/api/v1/oauth/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def client_app(api: httpx.AsyncClient, deps: Deps, scopes: list[str]) -> dict[str, Any]:
    created = await signup.create_tenant(deps, "acme")
    root = {"X-API-Key": created.api_key}
    await api.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=root)
    app = (
        await api.post("/api/v1/apps", json={"name": "crm", "scopes": scopes}, headers=root)
    ).json()
    issued = await api.post(f"/api/v1/apps/{app['app']['id']}/client-secret", headers=root)
    assert issued.status_code == 201, issued.text
    return {"root": root, "tenant_id": created.tenant["id"], **issued.json()}


async def get_token(api: httpx.AsyncClient, client: dict[str, Any], **form: str) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        **form,
    }
    return await api.post(TOKEN, data=body, headers=FORM)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SEND = {
    "channel": "sandbox",
    "receiver": {"type": "phone", "address": "+4791234567"},
    "content": {"type": "text", "text": "hi"},
}


async def test_a_token_from_client_secret_post_sends_a_message_and_verifies_with_the_jwks(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    client = await client_app(api, deps, ["send:message", "read:message"])
    answer = await get_token(api, client)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    grant = answer.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 3600
    assert grant["scope"] == "read:message send:message"
    sent = await api.post("/api/v1/messages", json=SEND, headers=bearer(grant["access_token"]))
    assert sent.status_code == 202, sent.text

    jwks = (await api.get("/api/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(grant["access_token"])
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert key["kty"] == "EC" and key["alg"] == "ES256" and "d" not in key  # public only
    claims = jwt.decode(
        grant["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=tokens.AUDIENCE,
        issuer=tokens.ISSUER,
    )
    assert claims["tenant"] == client["tenant_id"] and claims["sub"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == 3600


async def test_client_secret_basic_and_a_narrower_scope(api: httpx.AsyncClient, deps: Deps) -> None:
    client = await client_app(api, deps, ["send:message", "read:message"])
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    answer = await api.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "read:message"},
        headers={**FORM, "Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 200
    refused = await api.post("/api/v1/messages", json=SEND, headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_MISSING"


@pytest.mark.parametrize(
    ("form", "basic", "status", "error"),
    [
        ({"client_secret": "ocs_wrong"}, False, 401, "invalid_client"),
        ({"client_id": "app_nobody"}, False, 401, "invalid_client"),
        ({"grant_type": "password"}, False, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, False, 400, "invalid_request"),
        ({"scope": "delete:app"}, False, 400, "invalid_scope"),
        ({"client_secret": ""}, False, 401, "invalid_client"),
        ({"client_secret": "ocs_wrong"}, True, 401, "invalid_client"),
    ],
)
async def test_token_errors_follow_rfc_6749(
    api: httpx.AsyncClient,
    deps: Deps,
    form: dict[str, str],
    basic: bool,
    status: int,
    error: str,
) -> None:
    client = await client_app(api, deps, ["read:message"])
    body = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        **form,
    }
    headers = dict(FORM)
    if basic:
        pair = f"{body.pop('client_id')}:{body.pop('client_secret')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    answer = await api.post(TOKEN, data=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.headers["content-type"].startswith("application/json")
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic" if basic else "Bearer")
    assert client["client_secret"] not in answer.text


async def test_a_token_endpoint_wants_a_form(api: httpx.AsyncClient, deps: Deps) -> None:
    answer = await api.post(TOKEN, json={"grant_type": "client_credentials"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


async def test_forged_expired_and_revoked_tokens_are_refused(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    client = await client_app(api, deps, ["read:message"])
    token = (await get_token(api, client)).json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    pem = await deps.secrets.get(f"jwt-signing-{kid.replace('_', '-')}")
    assert pem is not None
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 10}, pem, algorithm="ES256", headers={"kid": kid}
    )
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    other_key = jwt.encode(
        claims,
        "a-shared-secret-an-attacker-picked-long-enough",
        algorithm="HS256",
        headers={"kid": kid},
    )
    wrong_audience = jwt.encode(
        {**claims, "aud": "someone-else"}, pem, algorithm="ES256", headers={"kid": kid}
    )
    for bad in (expired, unsigned, other_key, wrong_audience, token[:-4] + "AAAA", "not.a.jwt"):
        answer = await api.get("/api/v1/messages", headers=bearer(bad))
        assert answer.status_code == 401, bad
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]

    assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 200
    app_path = f"/api/v1/apps/{client['client_id']}"
    await api.patch(app_path, json={"status": "disabled"}, headers=client["root"])
    assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 401
    await api.patch(app_path, json={"status": "active"}, headers=client["root"])
    assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 200
    await tenants.set_status(deps, client["tenant_id"], "suspended")
    suspended = await api.get("/api/v1/messages", headers=bearer(token))
    assert suspended.status_code == 403 and suspended.json()["code"] == "TENANT_SUSPENDED"
    await tenants.set_status(deps, client["tenant_id"], "active")
    await api.delete(f"{app_path}/client-secret", headers=client["root"])
    assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 401
    assert (await get_token(api, client)).status_code == 401


async def test_signing_keys_rotate_without_breaking_valid_tokens(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    client = await client_app(api, deps, ["read:message"])
    before = (await get_token(api, client)).json()["access_token"]
    await tokens.rotate_signing_key(deps)
    after = (await get_token(api, client)).json()["access_token"]
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]
    kids = {k["kid"] for k in (await api.get("/api/.well-known/jwks.json")).json()["keys"]}
    assert {jwt.get_unverified_header(t)["kid"] for t in (before, after)} <= kids
    for token in (before, after):
        assert (await api.get("/api/v1/messages", headers=bearer(token))).status_code == 200


async def test_a_token_issued_in_the_same_second_as_a_secret_replacement_is_revoked(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 6: ``iat`` and the secret's creation were compared to the
    second, so a token issued just before a replacement (the "rotate right after the
    leak" case) survived it. The clock is held still: everything is in one second."""
    deps.clock = FrozenClock(deps.clock.now())  # type: ignore[assignment]
    client = await client_app(api, deps, ["read:channel"])
    token = (await get_token(api, client)).json()["access_token"]
    assert (await api.get("/api/v1/channels", headers=bearer(token))).status_code == 200
    app_id = client["client_id"]
    replaced = await api.post(f"/api/v1/apps/{app_id}/client-secret", headers=client["root"])
    assert replaced.status_code == 201
    assert (await api.get("/api/v1/channels", headers=bearer(token))).status_code == 401
    fresh = {**client, "client_secret": replaced.json()["client_secret"]}
    new_token = (await get_token(api, fresh)).json()["access_token"]
    assert (await api.get("/api/v1/channels", headers=bearer(new_token))).status_code == 200


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
