"""Access tokens: JWTs signed with ES256, whose public keys are served as a JWKS.

- Signing keys are P-256 key pairs: the private key in the secret store (Key Vault
  in Azure), the public JWK and its state in a Directory entry ``jwk_…`` of the
  platform. The newest active key signs; rotating adds a key and retires the old
  one, which the JWKS keeps publishing until every token it signed has expired.
- Verifying pins the algorithm to ES256 and checks ``iss``, ``aud``, ``exp``; who the
  token stands for (an application, a user) is ``authentication``'s to decide.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.containers import DIRECTORY
from shared.domain.errors import NotFoundError
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.services.deps import Deps
from shared.services.identity import directory

ISSUER = "urn:ocm"
AUDIENCE = "urn:ocm:api"
ALGORITHM = "ES256"
LONGEST_SECONDS = 3600
"""The longest any token lives (a client's): retired keys are published that long."""
SIGNING_KEY = "signing_key"


class InvalidToken(Exception):
    """The bearer token is malformed, forged, expired or revoked."""


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


async def verified_claims(deps: Deps, token: str) -> dict[str, Any]:
    """The claims of a token this platform signed and that is still valid, or
    InvalidToken."""
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
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=[ALGORITHM],  # pinned: never what the token's header says
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "tenant", "scope"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return claims


def _secret_name(kid: str) -> str:
    return f"jwt-signing-{kid.replace('_', '-')}"


async def _keys(deps: Deps) -> list[Document]:
    return sorted(await directory.of_kind(deps, SIGNING_KEY), key=lambda d: d["id"])


async def published_keys(deps: Deps) -> list[dict[str, Any]]:
    """The public JWKs tokens may be verified with: the active keys, and retired ones
    while tokens they signed may still be unexpired."""
    cached = await deps.lookups.get(("jwks",), lambda: _jwks_document(deps))
    keys: list[dict[str, Any]] = (cached or {}).get("keys", [])
    return keys


async def _jwks_document(deps: Deps) -> Document:
    now = deps.clock.now()
    keep_after = to_utc_text(now - timedelta(seconds=LONGEST_SECONDS + 300))
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
            "tenant_id": directory.PLATFORM,
            "kind": SIGNING_KEY,
            "public_jwk": public_jwk,
            "status": "active",
            "created_at": to_utc_text(now),
        },
    )
    for doc in older:
        await deps.store.patch(
            DIRECTORY,
            directory.PLATFORM,
            doc["id"],
            {"status": "retired", "retired_at": to_utc_text(now)},
        )
    deps.lookups.forget(("jwks",))
    return kid, pem
