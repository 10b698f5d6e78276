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
    "create:terminal": "register sender identities (numbers, sender ids, addresses, bots)",
    "read:terminal": "read and list sender identities",
    "update:terminal": "change sender identities (role, status, default)",
    "delete:terminal": "remove sender identities",
    "create:template": "create message templates",
    "read:template": "read, list and preview message templates",
    "update:template": "change message templates",
    "delete:template": "delete message templates",
    "read:opt_out": "read and list the receivers who opted out",
    "create:webhook": "subscribe endpoints to events (webhooks)",
    "read:webhook": "read webhook subscriptions and their deliveries",
    "update:webhook": "change webhooks, rotate their secrets, retry, replay and test deliveries",
    "delete:webhook": "delete webhook subscriptions",
    "manage:opt_out": "add and remove opt-outs by hand",
    "create:app": "create client applications (with at most the creator's own scopes)",
    "read:app": "read and list client applications",
    "update:app": "change applications, rotate and revoke their keys",
    "delete:app": "delete applications",
    "read:audit": "read the tenant's audit log",
    "read:analytics": "read the analytics: message counts, latency and cost",
    "manage:analytics": "save and delete analytics reports",
    "read:user": "read and list the tenant's users",
    "manage:user": "invite users, change their roles (up to one's own), disable them",
    "read:tenant": "list the tenant's child tenants",
    "manage:tenant": "create child tenants (managed with the OCM-Tenant header)",
}

ALL: frozenset[str] = frozenset(SCOPES)
"""Every scope: what a new tenant's bootstrap application holds."""


def unknown(scopes: list[str] | set[str] | frozenset[str]) -> list[str]:
    """The names in ``scopes`` that are not scopes, sorted."""
    return sorted(s for s in scopes if s not in SCOPES)


# Roles of users: each a documented set of scopes (docs/security.md). A role never
# includes a scope the one above it lacks, so "up to one's own" is a simple order.
ROLE_ORDER = ("viewer", "developer", "admin", "owner")
_VIEWER = frozenset(
    {
        "read:message",
        "read:channel",
        "read:app",
        "read:user",
        "read:terminal",
        "read:template",
        "read:opt_out",
        "read:webhook",
        "read:analytics",
    }
)
_DEVELOPER = _VIEWER | {
    "send:message",
    "create:channel",
    "update:channel",
    "create:terminal",
    "update:terminal",
    "create:template",
    "update:template",
    "create:webhook",
    "update:webhook",
    "manage:analytics",
}
_ADMIN = _DEVELOPER | {
    "delete:channel",
    "delete:terminal",
    "delete:template",
    "manage:opt_out",
    "delete:webhook",
    "create:app",
    "update:app",
    "delete:app",
    "read:audit",
    "manage:user",
    "read:tenant",
    "manage:tenant",
}
ROLES: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "developer": frozenset(_DEVELOPER),
    "admin": frozenset(_ADMIN),
    "owner": ALL,  # and only an owner makes owners
}
