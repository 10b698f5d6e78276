"""The one narrow door for cross-tenant lookups (system scope, by design).

The Directory is a container of small entries found by id alone, because whoever
looks them up does not know the tenant yet: an API key's prefix, a channel id in a
provider's callback, a client id, an e-mail at sign-in, a single-use or refresh
token, and the platform's own entries (signing keys, the unsubscribe key). Each
entry carries its tenant (``tenant_id``, its partition). Only this module reads
entries across tenants; their owners mint and remove them in the tenant's own
partition (``PLATFORM`` for the platform's own).
"""

from __future__ import annotations

from shared.containers import DIRECTORY
from shared.domain.models import Document
from shared.ports import SYSTEM, Filter, Query
from shared.services.deps import Deps

PLATFORM = "platform"
"""The partition of platform-wide entries and counters (not a tenant)."""


async def entry(deps: Deps, entry_id: str) -> Document | None:
    """An entry, fresh from the store (for what must not be cached: single-use tokens)."""
    return await deps.store.read(DIRECTORY, SYSTEM, entry_id)


async def cached_entry(deps: Deps, entry_id: str) -> Document | None:
    """An entry, cached briefly (what every request reads: credentials; whoever
    changes an entry calls ``forget``)."""
    return await deps.lookups.get((DIRECTORY, entry_id), lambda: entry(deps, entry_id))


def forget(deps: Deps, entry_id: str) -> None:
    deps.lookups.forget((DIRECTORY, entry_id))


async def of_kind(deps: Deps, kind: str, limit: int = 100) -> list[Document]:
    """The platform's entries of one kind (a few: signing keys)."""
    query = Query(scope=SYSTEM, where=(Filter("kind", "eq", kind),), limit=limit)
    return (await deps.store.query(DIRECTORY, query)).items


def api_key_id(prefix: str) -> str:
    return f"key_{prefix}"


def api_key_entry(
    prefix: str, tenant_id: str, app_id: str, digest: str, scopes: list[str], now: str
) -> Document:
    return {
        "id": api_key_id(prefix),
        "tenant_id": tenant_id,
        "kind": "api_key",
        "app_id": app_id,
        "prefix": prefix,
        "secret_sha256": digest,
        "scopes": scopes,
        "status": "active",
        "created_at": now,
    }


async def find_api_key(deps: Deps, prefix: str) -> Document | None:
    return await cached_entry(deps, api_key_id(prefix))


def forget_api_key(deps: Deps, prefix: str) -> None:
    forget(deps, api_key_id(prefix))


def channel_entry_id(channel_id: str) -> str:
    return f"chn_{channel_id}"


def channel_entry(channel_id: str, tenant_id: str, provider: str, now: str) -> Document:
    """Where provider callbacks, which name only the channel id, find its tenant."""
    return {
        "id": channel_entry_id(channel_id),
        "tenant_id": tenant_id,
        "kind": "channel",
        "channel_id": channel_id,
        "provider": provider,
        "created_at": now,
    }


async def find_channel(deps: Deps, channel_id: str) -> Document | None:
    return await cached_entry(deps, channel_entry_id(channel_id))
