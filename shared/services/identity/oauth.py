"""OAuth2 client credentials (RFC 6749 §4.4): an application's client secret buys a
short-lived JWT, signed with ES256, whose public keys are served as a JWKS.

- The client id is the application's id; its secret (``ocs_…``, shown once) is kept
  as SHA-256 in a Directory entry ``client_<app id>``, found by the client id.
- Signing keys are P-256 key pairs: the private key in the secret store (Key Vault
  in Azure), the public JWK and its state in a Directory entry ``jwk_…`` of the
  platform. The newest active key signs; rotating adds a key and retires the old
  one, which the JWKS keeps publishing until every token it signed has expired.
- Verifying pins the algorithm to ES256 and checks ``iss``, ``aud``, ``exp``; the
  token's scopes are narrowed to the application's current ones, and a disabled
  application, a revoked secret or a suspended tenant stops its tokens as it stops
  its keys (within ``OCM_LOOKUP_CACHE_SECONDS`` on other instances).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.containers import DIRECTORY
from shared.domain.errors import NotFoundError, OcmError
from shared.domain.ids import hash_secret, new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import SYSTEM, Filter, Query
from shared.services.deps import Deps, Principal
from shared.services.identity import tenants, users

ISSUER = "urn:ocm"
AUDIENCE = "urn:ocm:api"
ALGORITHM = "ES256"
TOKEN_SECONDS = 3600
PLATFORM = "platform"  # the Directory's owner of platform-wide entries
SIGNING_KEY = "signing_key"
CLIENT_ENTRY = "client_secret"  # the kind of a client secret's Directory entry


@dataclass(frozen=True)
class OAuthError(Exception):
    """An error answered as RFC 6749 §5.2 says: ``{"error": ..., "error_description"}``."""

    error: str
    description: str
    status: int = 400


def client_entry_id(client_id: str) -> str:
    return f"client_{client_id}"


# --- client secrets --------------------------------------------------------------------


async def issue_client_secret(deps: Deps, app: Document) -> str:
    """A new client secret for ``app`` (replacing any), shown once."""
    secret = f"ocs_{secrets.token_urlsafe(32)}"
    now = to_utc_text(deps.clock.now())
    entry = {
        "id": client_entry_id(app["id"]),
        "tenant_id": app["tenant_id"],
        "kind": CLIENT_ENTRY,
        "app_id": app["id"],
        "secret_sha256": hash_secret(secret),
        "scopes": list(app["scopes"]),
        "status": app.get("status", "active"),
        "created_at": now,
    }
    await deps.store.upsert(DIRECTORY, entry)
    deps.lookups.forget((DIRECTORY, entry["id"]))
    return secret


async def revoke_client_secret(deps: Deps, app: Document) -> bool:
    removed = await deps.store.delete(DIRECTORY, app["tenant_id"], client_entry_id(app["id"]))
    deps.lookups.forget((DIRECTORY, client_entry_id(app["id"])))
    return removed


async def _client(deps: Deps, client_id: str) -> Document | None:
    entry_id = client_entry_id(client_id)
    return await deps.lookups.get(
        (DIRECTORY, entry_id), lambda: deps.store.read(DIRECTORY, SYSTEM, entry_id)
    )


# --- tokens -------------------------------------------------------------------------


async def issue_token(
    deps: Deps, client_id: str, client_secret: str, scope: str | None
) -> dict[str, Any]:
    """The token answer for a client that authenticated, or OAuthError."""
    entry = await _client(deps, client_id) if client_id.startswith("app_") else None
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
    claims = {"sub": entry["app_id"], "client_id": entry["app_id"], "scope": scope}
    token = await sign(deps, entry["tenant_id"], claims, TOKEN_SECONDS)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_SECONDS,
        "scope": scope,
    }


async def sign(deps: Deps, tenant_id: str, claims: dict[str, Any], seconds: int) -> str:
    """An access token (ES256, the newest signing key) for ``tenant_id`` with these
    claims (``sub``, ``scope``, …), valid ``seconds``; issuer, audience and times added."""
    now = deps.clock.now()
    kid, private_pem = await signing_key(deps)
    stamp = int(now.timestamp())
    full = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "tenant": tenant_id,
        **claims,
        "iat": stamp,
        "nbf": stamp,
        "exp": int((now + timedelta(seconds=seconds)).timestamp()),
        "jti": new_id("tok", now),
    }
    return jwt.encode(full, private_pem, algorithm=ALGORITHM, headers={"kid": kid})


class InvalidToken(Exception):
    """The bearer token is malformed, forged, expired or revoked."""


async def authenticate_token(deps: Deps, token: str) -> Principal:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    key = next((k for k in await published_keys(deps) if k["kid"] == kid), None)
    if key is None:
        # Perhaps another instance rotated a moment ago: look once more, uncached.
        deps.lookups.forget(("jwks",))
        key = next((k for k in await published_keys(deps) if k["kid"] == kid), None)
    if key is None:
        raise InvalidToken("unknown signing key")
    try:
        claims = jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=[ALGORITHM],  # pinned: never what the token's header says
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "tenant", "scope"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("typ") == "user":
        principal = await users.user_principal(deps, claims)
        await tenants.check_active(deps, principal.tenant_id)
        return principal
    entry = await _client(deps, str(claims["sub"]))
    if entry is None or entry.get("status") != "active" or entry["tenant_id"] != claims["tenant"]:
        raise InvalidToken("the client is revoked or disabled")
    issued = to_utc_text(datetime.fromtimestamp(int(claims["iat"]), UTC))[:19]
    if issued < entry["created_at"][:19]:  # to the second, as iat is
        raise InvalidToken("the token was issued with a secret since replaced")
    await tenants.check_active(deps, entry["tenant_id"])
    current = set(entry.get("scopes", ()))
    return Principal(
        tenant_id=entry["tenant_id"],
        app_id=entry["app_id"],
        credential_id=f"token:{claims.get('jti', '')}",
        scopes=frozenset(s for s in str(claims["scope"]).split() if s in current),
    )


# --- signing keys ---------------------------------------------------------------------


def _secret_name(kid: str) -> str:
    return f"jwt-signing-{kid.replace('_', '-')}"


async def _keys(deps: Deps) -> list[Document]:
    page = await deps.store.query(
        DIRECTORY,
        Query(scope=SYSTEM, where=(Filter("kind", "eq", SIGNING_KEY),), limit=100),
    )
    return sorted(page.items, key=lambda d: d["id"])


async def published_keys(deps: Deps) -> list[dict[str, Any]]:
    """The public JWKs tokens may be verified with: the active keys, and retired ones
    while tokens they signed may still be unexpired."""
    cached = await deps.lookups.get(("jwks",), lambda: _jwks_document(deps))
    keys: list[dict[str, Any]] = (cached or {}).get("keys", [])
    return keys


async def _jwks_document(deps: Deps) -> Document:
    now = deps.clock.now()
    keep_after = to_utc_text(now - timedelta(seconds=TOKEN_SECONDS + 300))
    keys = [
        d["public_jwk"]
        for d in await _keys(deps)
        if d["status"] == "active" or (d.get("retired_at") or "") > keep_after
    ]
    return {"id": "jwks", "keys": keys}


async def signing_key(deps: Deps) -> tuple[str, str]:
    active = [d for d in await _keys(deps) if d["status"] == "active"]
    if not active:
        return await rotate_signing_key(deps)
    kid = active[-1]["id"]
    pem = await deps.secrets.get(_secret_name(kid))
    if pem is None:
        raise NotFoundError("The signing key's private half is missing", code="SIGNING_KEY_LOST")
    return kid, pem


async def rotate_signing_key(deps: Deps) -> tuple[str, str]:
    """A new active signing key; the ones before it retire (still published until the
    tokens they signed expire). Returns ``(kid, private PEM)``."""
    now = deps.clock.now()
    kid = new_id("jwk", now)
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_jwk = dict(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True))
    public_jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    await deps.secrets.set(_secret_name(kid), pem)
    older = [d for d in await _keys(deps) if d["status"] == "active"]
    await deps.store.create(
        DIRECTORY,
        {
            "id": kid,
            "tenant_id": PLATFORM,
            "kind": SIGNING_KEY,
            "public_jwk": public_jwk,
            "status": "active",
            "created_at": to_utc_text(now),
        },
    )
    for doc in older:
        await deps.store.patch(
            DIRECTORY, PLATFORM, doc["id"], {"status": "retired", "retired_at": to_utc_text(now)}
        )
    deps.lookups.forget(("jwks",))
    return kid, pem
