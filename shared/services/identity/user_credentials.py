"""What proves a user is who they say: a password (argon2id), an e-mail's Directory
entry, and the tokens kept as Directory entries (single-use and refresh).

- E-mail is unique across the platform (normalised): an entry ``email_<sha256>``
  points at the user.
- Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes), off
  the event loop.
- Tokens are kept as SHA-256 only, in entries ``<kind>_<sha256>`` that expire.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

from shared.containers import DIRECTORY, USERS
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.ids import hash_secret
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import Filter, Query
from shared.services import concurrency
from shared.services.deps import Deps
from shared.services.identity import directory
from shared.services.pages import every_page

_hasher = PasswordHasher()
ACCESS_SECONDS = 900
"""How long a user's access token lives; a revoked sign-in is remembered that long."""


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(hashed: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            "The e-mail address is not valid", errors=[FieldError("email", str(exc))]
        ) from None
    return checked.normalized.lower()


def email_entry_id(email: str) -> str:
    return f"email_{hash_secret(email)}"


def token_entry_id(kind: str, token: str) -> str:
    return f"{kind}_{hash_secret(token)}"


async def by_email(deps: Deps, email: str) -> Document | None:
    """The user with this (normalised) e-mail, in whichever tenant."""
    entry = await directory.entry(deps, email_entry_id(email))
    if entry is None:
        return None
    return await deps.store.read(USERS, entry["tenant_id"], entry["user_id"])


async def token_entry(deps: Deps, kind: str, token: str) -> Document | None:
    """The entry of a single-use or refresh token, if it is one of ``kind``."""
    entry = await directory.entry(deps, token_entry_id(kind, token))
    return entry if entry is not None and entry.get("kind") == kind else None


async def _refresh_entries(deps: Deps, tenant_id: str) -> list[Document]:
    """Every refresh-token entry of the tenant, page after page."""
    query = Query(scope=tenant_id, where=(Filter("kind", "eq", "refresh"),), limit=1000)
    return [doc async for page in every_page(deps.store, DIRECTORY, query) for doc in page]


async def revoke_family(deps: Deps, entry: Document) -> None:
    """Revoke the sign-in ``entry`` descends from: its refresh tokens, and at once the
    access tokens issued with them."""
    for doc in await _refresh_entries(deps, entry["tenant_id"]):
        if doc.get("family") == entry["family"]:
            await deps.store.delete(DIRECTORY, doc["tenant_id"], doc["id"])
    await _revoke_access(deps, entry["tenant_id"], entry["user_id"], entry["family"])


async def revoke_refresh_tokens(deps: Deps, user: Document) -> None:
    """Revoke every sign-in of the user (a new password, a disabled user): every
    refresh token, and at once every access token."""
    for doc in await _refresh_entries(deps, user["tenant_id"]):
        if doc.get("user_id") == user["id"]:
            await deps.store.delete(DIRECTORY, doc["tenant_id"], doc["id"])
    await _revoke_access(deps, user["tenant_id"], user["id"], None)


def access_revoked(user: Document, claims: dict[str, Any]) -> bool:
    """Whether an access token of ``user`` (its ``claims``) was revoked since issued:
    its generation is older than the user's, or its sign-in (family) was revoked."""
    if claims.get("gen", 0) != user.get("token_generation", 0):
        return True
    return any(r["family"] == claims.get("fam") for r in user.get("revoked_families") or ())


async def _revoke_access(deps: Deps, tenant_id: str, user_id: str, family: str | None) -> None:
    """Stop the user's access tokens (of one sign-in, or all) at once, on this instance,
    and within OCM_LOOKUP_CACHE_SECONDS on others (the user document is cached)."""
    now = deps.clock.now()
    kept_after = to_utc_text(now - timedelta(seconds=ACCESS_SECONDS))

    async def revoke(user: Document) -> None:
        if family is None:
            user["token_generation"] = user.get("token_generation", 0) + 1
            return
        recent = [r for r in user.get("revoked_families") or () if r["at"] > kept_after]
        user["revoked_families"] = [*recent, {"family": family, "at": to_utc_text(now)}]

    tries = concurrency.for_request("The user changed while revoking their tokens")
    load = lambda: deps.store.read(USERS, tenant_id, user_id)  # noqa: E731
    await concurrency.update(deps.store, USERS, load, revoke, tries)
    deps.lookups.forget((USERS, user_id))
