"""Who is calling: resolved from a credential, never from the request body."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A tenant's application or user, with the scopes its credential holds now."""

    tenant_id: str
    app_id: str
    credential_id: str
    scopes: frozenset[str]
    user_id: str | None = None
    """Set when a user (not an application) is calling."""
    acting_from: str | None = None
    """The parent tenant whose credential acts for this (child) tenant, if any."""

    def has(self, scope: str) -> bool:
        return scope in self.scopes
