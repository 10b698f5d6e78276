"""Signing in: a user's e-mail and password buy a short-lived access token (15 min,
the same signing keys as OAuth2) and a refresh token.

- Refreshing rotates the refresh token; one used twice revokes its whole family
  (it was stolen, or replayed).
- Guessing is slowed, never locked out: after 5 failures in 15 minutes for an
  account, or 20 from one address, the n-th further attempt must come 2ⁿ seconds
  after the last failure (up to 5 minutes), one at a time; refused attempts are
  answered 429 with Retry-After at once and never lengthen the wait.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.containers import COUNTERS, DIRECTORY, USERS
from shared.domain import scopes as scope_table
from shared.domain.errors import OcmError, Unauthorized, ValidationFailed
from shared.domain.ids import hash_secret, new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import NotFound, PreconditionFailed
from shared.services.deps import Deps
from shared.services.identity import tenants, tokens
from shared.services.identity.directory import PLATFORM
from shared.services.identity.user_credentials import (
    ACCESS_SECONDS,
    by_email,
    hash_password,
    normalise_email,
    password_matches,
    revoke_family,
    token_entry,
    token_entry_id,
)

REFRESH_SECONDS = 30 * 86_400
FREE_FAILURES_ACCOUNT = 5
FREE_FAILURES_ADDRESS = 20
FAILURE_WINDOW = 900
MAX_WAIT = 300


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class TooManyAttempts(OcmError):
    status = 429
    code = "TOO_MANY_ATTEMPTS"
    title = "Too many attempts"


async def login(deps: Deps, data: Login, address: str | None) -> dict[str, Any]:
    try:
        email = normalise_email(data.email)
    except ValidationFailed:
        email = data.email.strip().lower()  # answered like any wrong password below
    gates = (
        (f"acct_{hash_secret(email)}", FREE_FAILURES_ACCOUNT),
        (f"addr_{hash_secret(address or '-')}", FREE_FAILURES_ADDRESS),
    )
    for counter, free in gates:
        await _gate(deps, counter, free)
    user = await by_email(deps, email)
    ok = False
    if user is not None and user.get("password"):
        ok = await password_matches(user["password"], data.password)
    else:  # the same work whether or not the account exists
        await hash_password(data.password)
    if not ok or user is None or user["status"] != "active":
        for counter, _ in gates:
            await _failed(deps, counter)
        raise Unauthorized("The e-mail or password is wrong", code="INVALID_CREDENTIALS")
    await deps.store.delete(COUNTERS, PLATFORM, gates[0][0])  # a success forgives
    await tenants.check_active(deps, user["tenant_id"])
    return await _issue(deps, user, family=new_id("fam"))


async def _gate(deps: Deps, counter: str, free: int) -> None:
    """Admit a password check, or refuse it at once (429 TOO_MANY_ATTEMPTS).

    After ``free`` failures in the window, the n-th more must come 2ⁿ seconds after
    the last failure (up to MAX_WAIT); and at each failure count only so many checks
    may run at all — the free ones left, or one — so a burst in parallel gains
    nothing. Refused attempts are not failures: they never lengthen the wait, so
    nobody can lock an account out, only slow its guessing.
    """
    record = await deps.store.read(COUNTERS, PLATFORM, counter)
    failures = int((record or {}).get("n", 0))
    now = deps.clock.now().timestamp()
    wait = min(MAX_WAIT, 2 ** (failures - free + 1)) if failures >= free else 0
    if wait and now < float((record or {}).get("last", 0)) + wait:
        _too_many(float((record or {}).get("last", 0)) + wait - now)
    allowed = free - failures if failures < free else 1
    taken = await deps.store.increment(
        COUNTERS, PLATFORM, f"{counter}_try_{failures}", "n", 1, ttl=FAILURE_WINDOW
    )
    if taken > allowed:
        _too_many(max(1.0, float(wait)))


async def _failed(deps: Deps, counter: str) -> None:
    await deps.store.increment(COUNTERS, PLATFORM, counter, "n", 1, ttl=FAILURE_WINDOW)
    await deps.store.patch(COUNTERS, PLATFORM, counter, {"last": deps.clock.now().timestamp()})


def _too_many(seconds: float) -> None:
    wait = max(1, math.ceil(seconds))
    raise TooManyAttempts(
        f"Too many failed sign-ins; try again in {wait} s", headers={"Retry-After": str(wait)}
    )


async def refresh(deps: Deps, refresh_token: str) -> dict[str, Any]:
    entry = await token_entry(deps, "refresh", refresh_token)
    if entry is None:
        raise Unauthorized("The refresh token is not valid", code="INVALID_CREDENTIALS")
    if entry.get("used"):
        # Used before: a thief or a replay. Revoke the whole family.
        await revoke_family(deps, entry)
        raise Unauthorized("The refresh token was already used", code="INVALID_CREDENTIALS")
    try:
        await deps.store.patch(
            DIRECTORY, entry["tenant_id"], entry["id"], {"used": True}, etag=entry["_etag"]
        )
    except (PreconditionFailed, NotFound):
        # Two refreshes raced with the same token: one of them is a replay.
        await revoke_family(deps, entry)
        raise Unauthorized(
            "The refresh token was already used", code="INVALID_CREDENTIALS"
        ) from None
    user = await deps.store.read(USERS, entry["tenant_id"], entry["user_id"])
    if user is None or user["status"] != "active":
        raise Unauthorized("The user is disabled", code="INVALID_CREDENTIALS")
    await tenants.check_active(deps, user["tenant_id"])
    return await _issue(deps, user, family=entry["family"])


async def logout(deps: Deps, refresh_token: str) -> None:
    entry = await token_entry(deps, "refresh", refresh_token)
    if entry is not None:
        await revoke_family(deps, entry)


async def _issue(deps: Deps, user: Document, family: str) -> dict[str, Any]:
    now = deps.clock.now()
    scope = " ".join(sorted(scope_table.ROLES[user["role"]]))
    claims = {
        "sub": user["id"],
        "typ": "user",
        "scope": scope,
        "fam": family,  # the sign-in: revoking it stops this token at once
        "gen": user.get("token_generation", 0),  # a new password stops every token
    }
    access = await tokens.sign(deps, user["tenant_id"], claims, ACCESS_SECONDS)
    refresh_token = f"ort_{secrets.token_urlsafe(32)}"
    await deps.store.create(
        DIRECTORY,
        {
            "id": token_entry_id("refresh", refresh_token),
            "tenant_id": user["tenant_id"],
            "kind": "refresh",
            "user_id": user["id"],
            "family": family,
            "ttl": REFRESH_SECONDS,
            "created_at": to_utc_text(now),
        },
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_SECONDS,
        "refresh_token": refresh_token,
    }
