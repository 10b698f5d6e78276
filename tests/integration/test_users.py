"""Users: invited by an admin, sign in with argon2id-hashed passwords, hold their
role's scopes, refresh with rotating tokens, and slow down password guessing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.containers import USERS
from shared.services.deps import Deps
from shared.services.identity import sessions, users
from shared.services.onboarding import signup

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(OCM_DATA_DIR=tmp_path, OCM_RATE_LIMIT_PER_SECOND=0)


async def user_with_role(
    api: httpx.AsyncClient, key: dict[str, str], email: str, role: str
) -> dict[str, Any]:
    invited = await api.post("/api/v1/users", json={"email": email, "role": role}, headers=key)
    assert invited.status_code == 201, invited.text
    token = invited.json()["invitation_token"]
    accepted = await api.post(
        "/api/v1/users/accept-invite", json={"token": token, "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"
    login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {**login.json(), "user": accepted.json(), "invitation_token": token}


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def test_an_invited_user_signs_in_and_acts_with_the_role_s_scopes(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    root = {"X-API-Key": created.api_key}
    viewer = await user_with_role(api, root, "Viewer@Example.com", "viewer")
    me = await api.get("/api/v1/users/me", headers=bearer(viewer))
    assert me.status_code == 200 and me.json()["email"] == "viewer@example.com"
    assert (await api.get("/api/v1/channels", headers=bearer(viewer))).status_code == 200
    refused = await api.post(
        "/api/v1/channels", json={"name": "x", "type": "sandbox"}, headers=bearer(viewer)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_MISSING"
    # The password is stored as argon2id, never as given.
    stored = await deps.store.read(USERS, created.tenant["id"], me.json()["id"])
    assert stored is not None and stored["password"].startswith("$argon2id$")
    assert PASSWORD not in str(stored)
    # The invitation is single-use.
    again = await api.post(
        "/api/v1/users/accept-invite",
        json={"token": viewer["invitation_token"], "password": PASSWORD},
    )
    assert again.status_code == 422 and again.json()["code"] == "TOKEN_INVALID"


async def test_email_is_unique_across_the_platform(api: httpx.AsyncClient, deps: Deps) -> None:
    a = {"X-API-Key": (await signup.create_tenant(deps, "a")).api_key}
    b = {"X-API-Key": (await signup.create_tenant(deps, "b")).api_key}
    await api.post("/api/v1/users", json={"email": "ann@example.com", "role": "viewer"}, headers=a)
    clash = await api.post(
        "/api/v1/users", json={"email": "ANN@example.com", "role": "viewer"}, headers=b
    )
    assert clash.status_code == 409 and clash.json()["code"] == "EMAIL_TAKEN"


async def test_roles_are_granted_up_to_one_s_own(api: httpx.AsyncClient, deps: Deps) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    admin = await user_with_role(api, root, "admin@example.com", "admin")
    owner_by_admin = await api.post(
        "/api/v1/users", json={"email": "o@example.com", "role": "owner"}, headers=bearer(admin)
    )
    assert owner_by_admin.status_code == 403 and owner_by_admin.json()["code"] == "ROLE_TOO_HIGH"
    dev = await api.post(
        "/api/v1/users", json={"email": "d@example.com", "role": "developer"}, headers=bearer(admin)
    )
    assert dev.status_code == 201
    viewer = await user_with_role(api, root, "v@example.com", "viewer")
    promoted = await api.patch(
        f"/api/v1/users/{viewer['user']['id']}", json={"role": "developer"}, headers=bearer(admin)
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "developer"
    # The new role applies to the user's current token at once.
    created = await api.post(
        "/api/v1/channels", json={"name": "x", "type": "sandbox"}, headers=bearer(viewer)
    )
    assert created.status_code == 403  # the token was issued with the viewer's scopes
    self_change = await api.patch(
        f"/api/v1/users/{admin['user']['id']}", json={"role": "viewer"}, headers=bearer(admin)
    )
    assert self_change.status_code == 403
    disabled = await api.patch(
        f"/api/v1/users/{viewer['user']['id']}", json={"status": "disabled"}, headers=bearer(admin)
    )
    assert disabled.status_code == 200
    assert (await api.get("/api/v1/channels", headers=bearer(viewer))).status_code == 401
    again = await api.post(
        "/api/v1/auth/login", json={"email": "v@example.com", "password": PASSWORD}
    )
    assert again.status_code == 401


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_its_family(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    first = await user_with_role(api, root, "r@example.com", "viewer")
    second = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert (await api.get("/api/v1/users/me", headers=bearer(pair))).status_code == 200
    reused = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The reuse revoked the family: the newest refresh token is dead too.
    newest = await api.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert newest.status_code == 401
    third = await api.post(
        "/api/v1/auth/login", json={"email": "r@example.com", "password": PASSWORD}
    )
    out = await api.post(
        "/api/v1/auth/logout", json={"refresh_token": third.json()["refresh_token"]}
    )
    assert out.status_code == 204
    gone = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": third.json()["refresh_token"]}
    )
    assert gone.status_code == 401


async def test_guessing_slows_down_without_locking_anyone_out(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    await user_with_role(api, root, "g@example.com", "viewer")
    statuses = []
    for _ in range(sessions.FREE_FAILURES_ACCOUNT + 1):
        wrong = await api.post(
            "/api/v1/auth/login", json={"email": "g@example.com", "password": "wrong password!"}
        )
        statuses.append(wrong.status_code)
    assert statuses == [401] * sessions.FREE_FAILURES_ACCOUNT + [429]
    assert int(wrong.headers["retry-after"]) == 2
    assert wrong.json()["code"] == "TOO_MANY_ATTEMPTS"
    # Slowed, not locked: refused attempts do not lengthen the wait, and once it has
    # passed the right password works.
    for _ in range(3):
        again = await api.post(
            "/api/v1/auth/login", json={"email": "g@example.com", "password": PASSWORD}
        )
        assert again.status_code == 429
    await asyncio.sleep(2.1)
    right = await api.post(
        "/api/v1/auth/login", json={"email": "g@example.com", "password": PASSWORD}
    )
    assert right.status_code == 200
    unknown = await api.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever it is"}
    )
    assert (
        unknown.status_code == 401 and unknown.json()["detail"] == "The e-mail or password is wrong"
    )


async def test_parallel_guesses_get_no_more_checks_than_allowed(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    await user_with_role(api, root, "p2@example.com", "viewer")
    guesses = [
        api.post("/api/v1/auth/login", json={"email": "p2@example.com", "password": f"guess {i}!"})
        for i in range(40)
    ]
    statuses = [a.status_code for a in await asyncio.gather(*guesses)]
    assert statuses.count(401) <= sessions.FREE_FAILURES_ACCOUNT + 1  # the rest: refused at once
    assert statuses.count(401) + statuses.count(429) == 40


async def test_a_password_is_reset_with_an_operator_token(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    pair = await user_with_role(api, root, "p@example.com", "viewer")
    token = await users.reset_token(deps, "p@example.com")
    new_password = "another long password"
    reset = await api.post(
        "/api/v1/users/reset-password", json={"token": token, "password": new_password}
    )
    assert reset.status_code == 200
    old = await api.post(
        "/api/v1/auth/login", json={"email": "p@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await api.post(
        "/api/v1/auth/login", json={"email": "p@example.com", "password": new_password}
    )
    assert new.status_code == 200
    # A reset signs the user out everywhere else.
    stale = await api.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert stale.status_code == 401
    short = await api.post(
        "/api/v1/users/reset-password", json={"token": token, "password": "short"}
    )
    assert short.status_code == 422


async def test_a_password_reset_revokes_the_access_tokens_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 5: an access token lived its 15 minutes after a reset."""
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    pair = await user_with_role(api, root, "r@example.com", "viewer")
    assert (await api.get("/api/v1/channels", headers=bearer(pair))).status_code == 200
    token = await users.reset_token(deps, "r@example.com")
    body = {"token": token, "password": PASSWORD + "!"}
    assert (await api.post("/api/v1/users/reset-password", json=body)).status_code == 200
    assert (await api.get("/api/v1/channels", headers=bearer(pair))).status_code == 401
    fresh = {"email": "r@example.com", "password": PASSWORD + "!"}
    again = (await api.post("/api/v1/auth/login", json=fresh)).json()
    assert (await api.get("/api/v1/channels", headers=bearer(again))).status_code == 200


async def test_a_reused_refresh_token_revokes_its_sign_ins_access_tokens_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """Security review, finding 5: after reuse was detected, T2 still answered 200."""
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    first = await user_with_role(api, root, "f@example.com", "viewer")
    other = (
        await api.post("/api/v1/auth/login", json={"email": "f@example.com", "password": PASSWORD})
    ).json()
    renewed = (
        await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    replay = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    for revoked in (first, renewed):
        assert (await api.get("/api/v1/channels", headers=bearer(revoked))).status_code == 401
    assert (await api.get("/api/v1/channels", headers=bearer(other))).status_code == 200


async def test_signing_out_ends_that_sign_ins_access_token(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    root = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    pair = await user_with_role(api, root, "o@example.com", "viewer")
    out = await api.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204, out.text
    assert (await api.get("/api/v1/channels", headers=bearer(pair))).status_code == 401
