"""Users: people of a tenant, who sign in to the portal (and the API) with e-mail and
password (``sessions``); their role decides their scopes.

Invitations and password resets are single-use tokens, kept as SHA-256 in Directory
entries that expire (``ttl``); until the platform sends its own e-mail the token is in
the inviter's answer (invitations) or printed by the operator CLI (resets).
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.containers import DIRECTORY, USERS
from shared.domain import scopes as scope_table
from shared.domain.errors import (
    ConflictError,
    FieldError,
    Forbidden,
    NotFoundError,
    ValidationFailed,
)
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.names import Name
from shared.domain.principal import Principal
from shared.ports import Conflict, Page
from shared.services.deps import Deps
from shared.services.identity import audit
from shared.services.identity.tokens import InvalidToken
from shared.services.identity.user_credentials import (
    access_revoked,
    by_email,
    email_entry_id,
    hash_password,
    normalise_email,
    revoke_refresh_tokens,
    token_entry,
    token_entry_id,
)
from shared.services.pages import in_creation_order

Role = Literal["viewer", "developer", "admin", "owner"]
INVITE_SECONDS = 7 * 86_400
RESET_SECONDS = 3600
PUBLIC_FIELDS = ("id", "email", "name", "role", "status", "created_at", "updated_at")


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    name: Name | None = None
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    name: Name | None = None


class Password(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=12, max_length=200, description="12 characters or more")


def public(user: Document) -> Document:
    return {k: user.get(k) for k in PUBLIC_FIELDS}


async def invite(deps: Deps, principal: Principal, data: UserInvite) -> tuple[Document, str]:
    """A new user, invited: returns it and the invitation token (shown once)."""
    inviter_role = await _role_of(deps, principal)
    _may_grant(inviter_role, data.role)
    email = normalise_email(data.email)
    now = deps.clock.now()
    stamp = to_utc_text(now)
    user: Document = {
        "id": new_id("usr", now),
        "tenant_id": principal.tenant_id,
        "email": email,
        "name": data.name,
        "role": data.role,
        "status": "invited",
        "password": None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    try:
        await deps.store.create(
            DIRECTORY,
            {
                "id": email_entry_id(email),
                "tenant_id": principal.tenant_id,
                "kind": "user_email",
                "user_id": user["id"],
                "created_at": stamp,
            },
        )
    except Conflict:
        raise ConflictError("A user with that e-mail exists", code="EMAIL_TAKEN") from None
    await deps.store.create(USERS, user)
    token = await _single_use(deps, "invite", user, INVITE_SECONDS)
    return user, token


async def _single_use(deps: Deps, kind: str, user: Document, seconds: int) -> str:
    token = f"{kind[:3]}_{secrets.token_urlsafe(32)}"
    await deps.store.create(
        DIRECTORY,
        {
            "id": token_entry_id(kind, token),
            "tenant_id": user["tenant_id"],
            "kind": kind,
            "user_id": user["id"],
            "ttl": seconds,
            "created_at": to_utc_text(deps.clock.now()),
        },
    )
    return token


async def _redeem(deps: Deps, kind: str, token: str) -> Document:
    """The user a single-use token is for; the token is spent (deleted) first."""
    entry = await token_entry(deps, kind, token)
    if entry is None:
        raise ValidationFailed("The token is not valid or has expired", code="TOKEN_INVALID")
    if not await deps.store.delete(DIRECTORY, entry["tenant_id"], entry["id"]):
        raise ValidationFailed("The token is not valid or has expired", code="TOKEN_INVALID")
    user = await deps.store.read(USERS, entry["tenant_id"], entry["user_id"])
    if user is None:
        raise ValidationFailed("The token is not valid or has expired", code="TOKEN_INVALID")
    return user


async def accept_invite(deps: Deps, data: Password) -> Document:
    user = await _redeem(deps, "invite", data.token)
    user = await _set_password(deps, user, data.password, activate=True)
    await _audit_self(deps, user, "user.invite.accept")
    return user


async def _audit_self(deps: Deps, user: Document, action: str) -> None:
    me = Principal(user["tenant_id"], "", f"user:{user['id']}", frozenset(), user_id=user["id"])
    await audit.record(deps, me, action, {"type": "user", "id": user["id"]}, None)


async def reset_token(deps: Deps, email: str) -> str:
    """A password-reset token for the user (operator CLI until e-mail is sent)."""
    user = await by_email(deps, normalise_email(email))
    if user is None:
        raise NotFoundError("No user with that e-mail", code="USER_NOT_FOUND")
    token = await _single_use(deps, "reset", user, RESET_SECONDS)
    target = {"type": "user", "id": user["id"]}
    await audit.operator_record(deps, user["tenant_id"], "user.password.reset_token", target)
    return token


async def reset_password(deps: Deps, data: Password) -> Document:
    user = await _redeem(deps, "reset", data.token)
    user = await _set_password(deps, user, data.password, activate=False)
    await revoke_refresh_tokens(deps, user)
    await _audit_self(deps, user, "user.password.reset")
    return user


async def _set_password(deps: Deps, user: Document, password: str, *, activate: bool) -> Document:
    hashed = await hash_password(password)
    changes: dict[str, Any] = {"password": hashed, "updated_at": to_utc_text(deps.clock.now())}
    if activate and user["status"] == "invited":
        changes["status"] = "active"
    return await deps.store.patch(USERS, user["tenant_id"], user["id"], changes)


async def user_principal(deps: Deps, claims: dict[str, Any]) -> Principal:
    """The principal of a user's access token: its role's scopes as of now."""
    user = await deps.lookups.get(
        (USERS, str(claims["sub"])),
        lambda: deps.store.read(USERS, str(claims["tenant"]), str(claims["sub"])),
    )
    if user is None or user["status"] != "active":
        raise InvalidToken("the user is disabled")
    if access_revoked(user, claims):
        raise InvalidToken("the sign-in was revoked")
    current = scope_table.ROLES[user["role"]]
    return Principal(
        tenant_id=user["tenant_id"],
        app_id="",
        credential_id=f"user:{user['id']}",
        scopes=frozenset(s for s in str(claims["scope"]).split() if s in current),
        user_id=user["id"],
    )


async def get_user(deps: Deps, tenant_id: str, user_id: str) -> Document:
    user = await deps.store.read(USERS, tenant_id, user_id)
    if user is None:
        raise NotFoundError(f"No user {user_id!r}", code="USER_NOT_FOUND")
    return user


async def list_users(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    return await in_creation_order(deps.store, USERS, tenant_id, limit=limit, cursor=cursor)


async def update_user(deps: Deps, principal: Principal, user_id: str, data: UserUpdate) -> Document:
    user = await get_user(deps, principal.tenant_id, user_id)
    mine = await _role_of(deps, principal)
    _may_grant(mine, user["role"])  # one manages users up to one's own role
    if data.role is not None:
        _may_grant(mine, data.role)
    if principal.user_id == user_id and (data.role or data.status == "disabled"):
        raise Forbidden("Users cannot change their own role or disable themselves")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise ValidationFailed("Nothing to change", errors=[FieldError("body", "empty")])
    changes["updated_at"] = to_utc_text(deps.clock.now())
    user = await deps.store.patch(USERS, principal.tenant_id, user_id, changes)
    deps.lookups.forget((USERS, user_id))
    if data.status == "disabled":
        await revoke_refresh_tokens(deps, user)
    return user


async def _role_of(deps: Deps, principal: Principal) -> str:
    """The role a caller manages users with: a user's own (looked up in the tenant
    they belong to, which is the parent when acting for a child); an application's
    is the highest role whose scopes it holds all of, and never owner (only an owner,
    a person, makes owners)."""
    if principal.user_id:
        home = principal.acting_from or principal.tenant_id
        user = await get_user(deps, home, principal.user_id)
        return str(user["role"])
    held = [
        role
        for role in scope_table.ROLE_ORDER
        if role != "owner" and scope_table.ROLES[role] <= principal.scopes
    ]
    if not held:
        raise Forbidden("This credential holds no role's scopes", code="ROLE_TOO_HIGH")
    return held[-1]


def _may_grant(mine: str, theirs: str) -> None:
    order = scope_table.ROLE_ORDER
    if order.index(theirs) > order.index(mine) or (theirs == "owner" and mine != "owner"):
        raise Forbidden(f"A {mine} cannot manage or grant the role {theirs}", code="ROLE_TOO_HIGH")
