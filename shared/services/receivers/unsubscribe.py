"""One-click unsubscribe (RFC 8058) for e-mail: OCM serves the URL itself.

Every e-mail carries ``List-Unsubscribe: <https://…/api/v1/unsubscribe/{token}>``
and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. The token names the
tenant, the receiver and the message, signed with HMAC-SHA256 under a key kept
in the secret store (made on first use), so it cannot be forged or altered; a
POST to the URL opts the receiver out of the tenant's e-mail. A GET shows a page
with the button (mail scanners follow links; only a POST unsubscribes).

The URL needs the platform's public origin (``OCM_PUBLIC_BASE_URL``); without it
no header is added.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import orjson

from shared.containers import DIRECTORY
from shared.domain.encoding import b64url, b64url_decode
from shared.domain.errors import NotFoundError
from shared.domain.message_document import MessageDocument
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import Conflict
from shared.services.deps import Deps
from shared.services.identity import directory
from shared.services.receivers import opt_outs

KEY_ENTRY = "unsubscribe_key"
"""The Directory entry naming the one key's secret: whoever creates it first wins."""
PATH = "/api/v1/unsubscribe/"


async def _key(deps: Deps) -> bytes:
    async def load() -> Document:
        entry = await directory.entry(deps, KEY_ENTRY)
        if entry is None:
            entry = await _make_key(deps)
        stored = await deps.secrets.get(entry["secret_name"])
        if stored is None:
            raise RuntimeError("the unsubscribe signing key's secret is missing")
        return {"key": stored}

    cached = await deps.lookups.get(("secret", KEY_ENTRY), load)
    assert cached is not None
    return str(cached["key"]).encode()


async def _make_key(deps: Deps) -> Document:
    """A key under a name of its own, then the entry naming it. Instances racing on
    first use each store a key, and all use the one whose entry was created first
    (the others' secrets are left unused): no link is signed with a key that loses."""
    name = f"unsubscribe-key-{secrets.token_hex(8)}"
    await deps.secrets.set(name, secrets.token_urlsafe(32))
    entry = {
        "id": KEY_ENTRY,
        "tenant_id": directory.PLATFORM,
        "kind": "unsubscribe_key",
        "secret_name": name,
        "created_at": to_utc_text(deps.clock.now()),
    }
    try:
        return await deps.store.create(DIRECTORY, entry)
    except Conflict:
        winner = await directory.entry(deps, KEY_ENTRY)
        assert winner is not None
        return winner


async def _mac(deps: Deps, body: str) -> bytes:
    """The token's signature over its (encoded) claims: 128 bits of HMAC-SHA256."""
    return hmac.new(await _key(deps), body.encode(), hashlib.sha256).digest()[:16]


async def headers_for(deps: Deps, doc: MessageDocument) -> dict[str, str]:
    """The List-Unsubscribe headers of an e-mail message (none without a public URL)."""
    base = deps.settings.public_base_url
    receiver = doc.get("receiver")
    if not base or not receiver:
        return {}
    claims = orjson.dumps({"t": doc["tenant_id"], "a": receiver["address"], "m": doc["id"]})
    body = b64url(claims)
    mac = b64url(await _mac(deps, body))
    return {
        "List-Unsubscribe": f"<{base.rstrip('/')}{PATH}{body}.{mac}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


async def unsubscribe(deps: Deps, token: str) -> None:
    """Opt the token's receiver out of its tenant's e-mail; a bad token is a 404."""
    body, _, mac = token.partition(".")
    try:
        expected = await _mac(deps, body)
        valid = hmac.compare_digest(b64url_decode(mac), expected)
        claims = orjson.loads(b64url_decode(body)) if valid else None
    except (ValueError, orjson.JSONDecodeError):
        claims = None
    if not isinstance(claims, dict) or not all(isinstance(claims.get(k), str) for k in "tam"):
        raise NotFoundError("No such unsubscribe link", code="UNSUBSCRIBE_LINK_INVALID")
    await opt_outs.add(
        deps, claims["t"], "email", claims["a"], "unsubscribe", message_id=claims["m"]
    )
