"""SecretStore port on Azure Key Vault (``azure.keyvault.secrets.aio``), with a short
in-memory cache: Key Vault throttles per vault, and dispatch reads a channel's
credentials for every message it sends. Values are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

log = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")


def build_secret_client(vault_url: str, credential: AsyncTokenCredential) -> SecretClient:
    """An identity-based client (``DefaultAzureCredential`` in Azure)."""
    return SecretClient(vault_url, credential)


def check_name(name: str) -> None:
    """Key Vault secret names are 1-127 characters of ``0-9 a-z A-Z -``."""
    if not SECRET_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a Key Vault secret name (1-127 characters of 0-9, a-z, A-Z, -)"
        )


@dataclass(frozen=True, slots=True)
class _Cached:
    value: str
    until: float


class KeyVaultSecretStore:
    """Secrets in one vault, each read cached for ``ttl_seconds`` (0: no cache).

    The cache always reflects this store's own writes (a set replaces the entry, a
    delete drops it, and a read that overlapped a write does not cache what it
    fetched); a value written by another instance is seen at most ``ttl_seconds``
    late. Misses are not cached, so a secret just written elsewhere is seen at once.
    ``credential``, when given, is owned by the store and closed with it.
    """

    def __init__(
        self,
        client: SecretClient,
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        credential: AsyncTokenCredential | None = None,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._credential = credential
        self._cache: dict[str, _Cached] = {}
        self._writes = 0  # bumped by every set and delete

    async def get(self, name: str) -> str | None:
        check_name(name)
        cached = self._cache.get(name)
        if cached is not None and cached.until > self._clock():
            log.debug("secret %s served from the cache", name)
            return cached.value
        writes = self._writes
        try:
            secret = await self._client.get_secret(name)
        except ResourceNotFoundError:
            log.debug("secret %s is not in the vault", name)
            return None
        log.debug("secret %s read from the vault", name)
        if secret.value is not None and writes == self._writes:
            self._remember(name, secret.value)
        return secret.value

    async def set(self, name: str, value: str) -> None:
        check_name(name)
        try:
            await self._client.set_secret(name, value)
        finally:
            self._writes += 1
            self._cache.pop(name, None)
        self._remember(name, value)
        log.debug("secret %s written", name)

    async def delete(self, name: str) -> None:
        """Delete every version; a missing secret is fine.

        The async client's ``delete_secret`` returns once Key Vault lists the secret
        as deleted, which on a soft-delete vault "may take several seconds" (SDK
        docstring); the secret itself is unreadable from the first response on.
        Waiting keeps a failure visible to the caller, and the name, derived from an
        immutable id, is never set again (purge protection keeps it reserved).
        """
        check_name(name)
        try:
            await self._client.delete_secret(name)
        except ResourceNotFoundError:
            log.debug("secret %s was already gone", name)
        else:
            log.debug("secret %s deleted", name)
        finally:
            self._writes += 1
            self._cache.pop(name, None)

    async def close(self) -> None:
        """Close the client, and the credential the store owns."""
        self._cache.clear()
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()

    def _remember(self, name: str, value: str) -> None:
        self._cache[name] = _Cached(value, self._clock() + self._ttl)
