"""OAuth2 client credentials (RFC 6749 §4.4): an application's client secret buys a
short-lived access token.

The client id is the application's id; its secret (``ocs_…``, shown once) is kept as
SHA-256 in a Directory entry ``client_<app id>``, found by the client id. The token's
scopes are those asked for, at most the application's; a disabled application, a
revoked or replaced secret or a suspended tenant stops its tokens as it stops its keys
(within ``OCM_LOOKUP_CACHE_SECONDS`` on other instances): each token names the secret it
was issued with (``sid``), and only the current one's tokens are valid.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from shared.containers import DIRECTORY
from shared.domain.errors import OcmError
from shared.domain.ids import hash_secret, new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.services.deps import Deps
from shared.services.identity import directory, tenants, tokens

TOKEN_SECONDS = tokens.LONGEST_SECONDS
CLIENT_ENTRY = "client_secret"  # the kind of a client secret's Directory entry


@dataclass(frozen=True)
class OAuthError(Exception):
    """An error answered as RFC 6749 §5.2 says: ``{"error": ..., "error_description"}``."""

    error: str
    description: str
    status: int = 400


def client_entry_id(client_id: str) -> str:
    return f"client_{client_id}"


async def issue_client_secret(deps: Deps, app: Document) -> str:
    """A new client secret for ``app`` (replacing any), shown once."""
    secret = f"ocs_{secrets.token_urlsafe(32)}"
    now = to_utc_text(deps.clock.now())
    entry = {
        "id": client_entry_id(app["id"]),
        "secret_id": new_id("csec"),  # names this secret in its tokens: a new one ends them
        "tenant_id": app["tenant_id"],
        "kind": CLIENT_ENTRY,
        "app_id": app["id"],
        "secret_sha256": hash_secret(secret),
        "scopes": list(app["scopes"]),
        "status": app.get("status", "active"),
        "created_at": now,
    }
    await deps.store.upsert(DIRECTORY, entry)
    directory.forget(deps, entry["id"])
    return secret


async def revoke_client_secret(deps: Deps, app: Document) -> bool:
    removed = await deps.store.delete(DIRECTORY, app["tenant_id"], client_entry_id(app["id"]))
    directory.forget(deps, client_entry_id(app["id"]))
    return removed


async def find_client(deps: Deps, client_id: str) -> Document | None:
    """The client secret's entry of an application (cached briefly)."""
    return await directory.cached_entry(deps, client_entry_id(client_id))


async def issue_token(
    deps: Deps, client_id: str, client_secret: str, scope: str | None
) -> dict[str, Any]:
    """The token answer for a client that authenticated, or OAuthError."""
    entry = await find_client(deps, client_id) if client_id.startswith("app_") else None
    if (
        entry is None
        or entry.get("kind") != CLIENT_ENTRY
        or not hmac.compare_digest(entry["secret_sha256"], hash_secret(client_secret))
    ):
        raise OAuthError("invalid_client", "Client authentication failed", 401)
    if entry.get("status") != "active":
        raise OAuthError("invalid_client", "The client is disabled", 401)
    try:
        await tenants.check_active(deps, entry["tenant_id"])
    except OcmError:
        raise OAuthError("unauthorized_client", "The tenant is suspended", 400) from None
    granted = set(entry.get("scopes", ()))
    wanted = set(scope.split()) if scope else granted
    if not wanted <= granted:
        raise OAuthError("invalid_scope", "The client is not granted every scope asked for")
    scope = " ".join(sorted(wanted))
    claims = {
        "sub": entry["app_id"],
        "client_id": entry["app_id"],
        "scope": scope,
        "sid": entry.get("secret_id"),
    }
    token = await tokens.sign(deps, entry["tenant_id"], claims, TOKEN_SECONDS)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_SECONDS,
        "scope": scope,
    }
