"""Authentication: a credential (an API key, or an access token) → the ``Principal``
calling, or ``Unauthorized`` / ``InvalidToken``; the same message for every failure.

Both ways read what changes in a credential's life (revoked, disabled, a suspended
tenant) on every request, from the lookup cache: other instances see a change within
``OCM_LOOKUP_CACHE_SECONDS``.
"""

from __future__ import annotations

import hmac
from typing import Any

from shared.domain.errors import Unauthorized
from shared.domain.ids import hash_secret, split_api_key
from shared.domain.principal import Principal
from shared.services.deps import Deps
from shared.services.identity import client_credentials, directory, tenants, tokens, users
from shared.services.identity.tokens import InvalidToken


async def authenticate_api_key(deps: Deps, key: str) -> Principal:
    """Resolve ``X-API-Key`` to a principal, or raise Unauthorized (one message for all)."""
    parts = split_api_key(key)
    if parts is None:
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    prefix, secret = parts
    entry = await directory.find_api_key(deps, prefix)
    if entry is None or entry.get("status") != "active":
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    if not hmac.compare_digest(entry["secret_sha256"], hash_secret(secret)):
        raise Unauthorized("The API key is not valid", code="INVALID_CREDENTIALS")
    await tenants.check_active(deps, entry["tenant_id"])
    return Principal(
        tenant_id=entry["tenant_id"],
        app_id=entry["app_id"],
        credential_id=entry["id"],
        scopes=frozenset(entry.get("scopes", ())),
    )


async def authenticate_token(deps: Deps, token: str) -> Principal:
    """Resolve a bearer token (a user's, or a client's) to a principal whose scopes
    are those the token holds and its holder still has, or raise InvalidToken."""
    claims = await tokens.verified_claims(deps, token)
    if claims.get("typ") == "user":
        principal = await users.user_principal(deps, claims)
        await tenants.check_active(deps, principal.tenant_id)
        return principal
    return await _client_principal(deps, claims)


async def _client_principal(deps: Deps, claims: dict[str, Any]) -> Principal:
    entry = await client_credentials.find_client(deps, str(claims["sub"]))
    if entry is None or entry.get("status") != "active" or entry["tenant_id"] != claims["tenant"]:
        raise InvalidToken("the client is revoked or disabled")
    if claims.get("sid") != entry.get("secret_id"):
        raise InvalidToken("the token was issued with a secret since replaced")
    await tenants.check_active(deps, entry["tenant_id"])
    current = set(entry.get("scopes", ()))
    return Principal(
        tenant_id=entry["tenant_id"],
        app_id=entry["app_id"],
        credential_id=f"token:{claims.get('jti', '')}",
        scopes=frozenset(s for s in str(claims["scope"]).split() if s in current),
    )
