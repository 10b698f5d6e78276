"""Users: people of a tenant, who sign in to the portal (and the API) with e-mail and
password; their role decides their scopes.

- E-mail is unique across the platform (normalised): a Directory entry
  ``email_<sha256>`` points at the user.
- Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes), off
  the event loop.
- Invitations and password resets are single-use tokens, kept as SHA-256 in
  Directory entries that expire (``ttl``); until the platform sends its own e-mail
  the token is in the inviter's answer (invitations) or printed by the operator CLI
  (resets).
- Login answers a short-lived JWT (15 min, the same signing keys as OAuth2) and a
  refresh token; refreshing rotates it, and a refresh token used twice revokes its
  whole family (it was stolen, or replayed).
- Guessing is slowed, never locked out: after 5 failures in 15 minutes for an
  account, or 20 from one address, the n-th further attempt must come 2ⁿ seconds
  after the last failure (up to 5 minutes), one at a time; refused attempts are
  answered 429 with Retry-After at once and never lengthen the wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field

from shared.containers import COUNTERS, DIRECTORY, USERS
from shared.domain import scopes as scope_table
from shared.domain.errors import (
    ConflictError,
    FieldError,
    Forbidden,
    NotFoundError,
    OcmError,
    Unauthorized,
    ValidationFailed,
)
from shared.domain.ids import hash_secret, new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import SYSTEM, Conflict, Filter, NotFound, Page, PreconditionFailed, Query
from shared.services.deps import Deps, Principal
from shared.services.identity import audit, oauth, tenants
from shared.services.pages import list_page

Role = Literal["viewer", "developer", "admin", "owner"]
ACCESS_SECONDS = 900
REFRESH_SECONDS = 30 * 86_400
INVITE_SECONDS = 7 * 86_400
RESET_SECONDS = 3600
FREE_FAILURES_ACCOUNT = 5
FREE_FAILURES_ADDRESS = 20
FAILURE_WINDOW = 900
MAX_WAIT = 300
PUBLIC_FIELDS = ("id", "email", "name", "role", "status", "created_at", "updated_at")
_hasher = PasswordHasher()


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    name: str | None = Field(default=None, max_length=128)
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    name: str | None = Field(default=None, max_length=128)


class Password(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=12, max_length=200, description="12 characters or more")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class TooManyAttempts(OcmError):
    status = 429
    code = "TOO_MANY_ATTEMPTS"
    title = "Too many attempts"


def public(user: Document) -> Document:
    return {k: user.get(k) for k in PUBLIC_FIELDS}


def normalise_email(email: str) -> str:
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            "The e-mail address is not valid", errors=[FieldError("email", str(exc))]
        ) from None
    return checked.normalized.lower()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def email_entry_id(email: str) -> str:
    return f"email_{_digest(email)}"


def _token_entry_id(kind: str, token: str) -> str:
    return f"{kind}_{hash_secret(token)}"


# --- invitations, passwords -------------------------------------------------------------


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
            "id": _token_entry_id(kind, token),
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
    entry = await deps.store.read(DIRECTORY, SYSTEM, _token_entry_id(kind, token))
    if entry is None or entry.get("kind") != kind:
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
    user = await _by_email(deps, normalise_email(email))
    if user is None:
        raise NotFoundError("No user with that e-mail", code="USER_NOT_FOUND")
    token = await _single_use(deps, "reset", user, RESET_SECONDS)
    target = {"type": "user", "id": user["id"]}
    await audit.operator_record(deps, user["tenant_id"], "user.password.reset_token", target)
    return token


async def reset_password(deps: Deps, data: Password) -> Document:
    user = await _redeem(deps, "reset", data.token)
    user = await _set_password(deps, user, data.password, activate=False)
    await _revoke_refresh_tokens(deps, user)
    await _audit_self(deps, user, "user.password.reset")
    return user


async def _set_password(deps: Deps, user: Document, password: str, *, activate: bool) -> Document:
    hashed = await asyncio.to_thread(_hasher.hash, password)
    changes: dict[str, Any] = {"password": hashed, "updated_at": to_utc_text(deps.clock.now())}
    if activate and user["status"] == "invited":
        changes["status"] = "active"
    return await deps.store.patch(USERS, user["tenant_id"], user["id"], changes)


# --- login, tokens --------------------------------------------------------------------


async def login(deps: Deps, data: Login, address: str | None) -> dict[str, Any]:
    try:
        email = normalise_email(data.email)
    except ValidationFailed:
        email = data.email.strip().lower()  # answered like any wrong password below
    gates = (
        (f"acct_{_digest(email)}", FREE_FAILURES_ACCOUNT),
        (f"addr_{_digest(address or '-')}", FREE_FAILURES_ADDRESS),
    )
    for counter, free in gates:
        await _gate(deps, counter, free)
    user = await _by_email(deps, email)
    ok = False
    if user is not None and user.get("password"):
        try:
            ok = await asyncio.to_thread(_hasher.verify, user["password"], data.password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:  # the same work whether or not the account exists
        await asyncio.to_thread(_hasher.hash, data.password)
    if not ok or user is None or user["status"] != "active":
        for counter, _ in gates:
            await _failed(deps, counter)
        raise Unauthorized("The e-mail or password is wrong", code="INVALID_CREDENTIALS")
    await deps.store.delete(COUNTERS, oauth.PLATFORM, gates[0][0])  # a success forgives
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
    record = await deps.store.read(COUNTERS, oauth.PLATFORM, counter)
    failures = int((record or {}).get("n", 0))
    now = deps.clock.now().timestamp()
    wait = min(MAX_WAIT, 2 ** (failures - free + 1)) if failures >= free else 0
    if wait and now < float((record or {}).get("last", 0)) + wait:
        _too_many(float((record or {}).get("last", 0)) + wait - now)
    allowed = free - failures if failures < free else 1
    taken = await deps.store.increment(
        COUNTERS, oauth.PLATFORM, f"{counter}_try_{failures}", "n", 1, ttl=FAILURE_WINDOW
    )
    if taken > allowed:
        _too_many(max(1.0, float(wait)))


async def _failed(deps: Deps, counter: str) -> None:
    await deps.store.increment(COUNTERS, oauth.PLATFORM, counter, "n", 1, ttl=FAILURE_WINDOW)
    await deps.store.patch(
        COUNTERS, oauth.PLATFORM, counter, {"last": deps.clock.now().timestamp()}
    )


def _too_many(seconds: float) -> None:
    wait = max(1, math.ceil(seconds))
    raise TooManyAttempts(
        f"Too many failed sign-ins; try again in {wait} s", headers={"Retry-After": str(wait)}
    )


async def refresh(deps: Deps, refresh_token: str) -> dict[str, Any]:
    entry = await deps.store.read(DIRECTORY, SYSTEM, _token_entry_id("refresh", refresh_token))
    if entry is None or entry.get("kind") != "refresh":
        raise Unauthorized("The refresh token is not valid", code="INVALID_CREDENTIALS")
    if entry.get("used"):
        # Used before: a thief or a replay. Revoke the whole family.
        await _revoke_family(deps, entry)
        raise Unauthorized("The refresh token was already used", code="INVALID_CREDENTIALS")
    try:
        await deps.store.patch(
            DIRECTORY, entry["tenant_id"], entry["id"], {"used": True}, etag=entry["_etag"]
        )
    except (PreconditionFailed, NotFound):
        # Two refreshes raced with the same token: one of them is a replay.
        await _revoke_family(deps, entry)
        raise Unauthorized(
            "The refresh token was already used", code="INVALID_CREDENTIALS"
        ) from None
    user = await deps.store.read(USERS, entry["tenant_id"], entry["user_id"])
    if user is None or user["status"] != "active":
        raise Unauthorized("The user is disabled", code="INVALID_CREDENTIALS")
    await tenants.check_active(deps, user["tenant_id"])
    return await _issue(deps, user, family=entry["family"])


async def logout(deps: Deps, refresh_token: str) -> None:
    entry = await deps.store.read(DIRECTORY, SYSTEM, _token_entry_id("refresh", refresh_token))
    if entry is not None and entry.get("kind") == "refresh":
        await _revoke_family(deps, entry)


async def _issue(deps: Deps, user: Document, family: str) -> dict[str, Any]:
    now = deps.clock.now()
    scope = " ".join(sorted(scope_table.ROLES[user["role"]]))
    claims = {"sub": user["id"], "typ": "user", "scope": scope}
    access = await oauth.sign(deps, user["tenant_id"], claims, ACCESS_SECONDS)
    refresh_token = f"ort_{secrets.token_urlsafe(32)}"
    await deps.store.create(
        DIRECTORY,
        {
            "id": _token_entry_id("refresh", refresh_token),
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


async def _refresh_entries(deps: Deps, tenant_id: str) -> list[Document]:
    """Every refresh-token entry of the tenant, page after page."""
    found: list[Document] = []
    cursor = None
    while True:
        page = await deps.store.query(
            DIRECTORY,
            Query(
                scope=tenant_id,
                where=(Filter("kind", "eq", "refresh"),),
                limit=1000,
                cursor=cursor,
            ),
        )
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _revoke_family(deps: Deps, entry: Document) -> None:
    for doc in await _refresh_entries(deps, entry["tenant_id"]):
        if doc.get("family") == entry["family"]:
            await deps.store.delete(DIRECTORY, doc["tenant_id"], doc["id"])


async def _revoke_refresh_tokens(deps: Deps, user: Document) -> None:
    for doc in await _refresh_entries(deps, user["tenant_id"]):
        if doc.get("user_id") == user["id"]:
            await deps.store.delete(DIRECTORY, doc["tenant_id"], doc["id"])


async def user_principal(deps: Deps, claims: dict[str, Any]) -> Principal:
    """The principal of a user's access token: its role's scopes as of now."""
    user = await deps.lookups.get(
        (USERS, str(claims["sub"])),
        lambda: deps.store.read(USERS, str(claims["tenant"]), str(claims["sub"])),
    )
    if user is None or user["status"] != "active":
        raise oauth.InvalidToken("the user is disabled")
    current = scope_table.ROLES[user["role"]]
    return Principal(
        tenant_id=user["tenant_id"],
        app_id="",
        credential_id=f"user:{user['id']}",
        scopes=frozenset(s for s in str(claims["scope"]).split() if s in current),
        user_id=user["id"],
    )


# --- management -----------------------------------------------------------------------


async def _by_email(deps: Deps, email: str) -> Document | None:
    entry = await deps.store.read(DIRECTORY, SYSTEM, email_entry_id(email))
    if entry is None:
        return None
    return await deps.store.read(USERS, entry["tenant_id"], entry["user_id"])


async def get_user(deps: Deps, tenant_id: str, user_id: str) -> Document:
    user = await deps.store.read(USERS, tenant_id, user_id)
    if user is None:
        raise NotFoundError(f"No user {user_id!r}", code="USER_NOT_FOUND")
    return user


async def list_users(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    return await list_page(
        deps.store,
        USERS,
        Query(scope=tenant_id, order_by="created_at", limit=limit, cursor=cursor),
    )


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
        await _revoke_refresh_tokens(deps, user)
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
