"""The secret store port: named secrets (provider credentials, webhook secrets)."""

from __future__ import annotations

from typing import Protocol


class SecretStore(Protocol):
    async def set(self, name: str, value: str) -> None: ...

    async def get(self, name: str) -> str | None: ...

    async def delete(self, name: str) -> None: ...
