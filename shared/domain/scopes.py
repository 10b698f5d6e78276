"""Scopes: what a credential may do, as ``action:resource``. One table, documented in
docs/security.md; every route declares the one it needs next to itself."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "send:message": "send messages, single or in batches, and cancel them before they go",
    "read:message": "read and list messages and their timelines",
    "create:channel": "create channels",
    "read:channel": "read and list channels",
    "update:channel": "change channels, set their credentials, simulate inbound messages",
    "delete:channel": "delete channels",
    "create:app": "create client applications (with at most the creator's own scopes)",
    "read:app": "read and list client applications",
    "update:app": "change applications, rotate and revoke their keys",
    "delete:app": "delete applications",
    "read:audit": "read the tenant's audit log",
}

ALL: frozenset[str] = frozenset(SCOPES)
WILDCARD = "*"
"""Granted to bootstrap keys made before scopes were listed: every scope."""


def unknown(scopes: list[str] | set[str] | frozenset[str]) -> list[str]:
    """The names in ``scopes`` that are not scopes, sorted."""
    return sorted(s for s in scopes if s not in SCOPES)
