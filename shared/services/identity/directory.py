"""The one narrow place for cross-tenant lookups (system scope, by design).

API-key prefix → credential (and its tenant). Channel id → channel (for provider
callbacks) and users by e-mail will join here.
"""

from __future__ import annotations

from shared.containers import DIRECTORY
from shared.domain.models import Document
from shared.ports import SYSTEM
from shared.services.deps import Deps


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
    """The key's entry (cached briefly: every request authenticates; whoever changes
    an entry calls ``forget_api_key``)."""
    key_id = api_key_id(prefix)
    return await deps.lookups.get(
        (DIRECTORY, key_id), lambda: deps.store.read(DIRECTORY, SYSTEM, key_id)
    )


def forget_api_key(deps: Deps, prefix: str) -> None:
    deps.lookups.forget((DIRECTORY, api_key_id(prefix)))


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
    entry_id = channel_entry_id(channel_id)
    return await deps.lookups.get(
        (DIRECTORY, entry_id), lambda: deps.store.read(DIRECTORY, SYSTEM, entry_id)
    )
