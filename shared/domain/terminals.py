"""Terminals: the sender identities a tenant owns on a channel, and who may send as what.

An e-mail terminal whose address is ``@domain`` stands for every address of that
domain (a verified sending domain), so one registration covers ``noreply@``,
``billing@`` and the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.addresses import check_terminal, normalise_email
from shared.domain.channels import NAME_PATTERN
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import Terminal, TerminalType
from shared.domain.names import DisplayName

TerminalRole = Literal["sender", "receiver", "both"]
TerminalStatus = Literal["active", "disabled"]
SENDING_ROLES: frozenset[str] = frozenset({"sender", "both"})

Senders = frozenset[tuple[str, str]]
"""The ``(type, address)`` pairs a channel may send as."""


class TerminalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(pattern=NAME_PATTERN, description="The channel's name.")
    type: TerminalType = Field(description="email (an address or `@domain`), phone, …")
    address: str = Field(min_length=1, max_length=4096)
    display_name: DisplayName | None = None
    role: TerminalRole = "sender"
    status: TerminalStatus = "active"


class TerminalUpdate(BaseModel):
    """Unset fields stay, as does a null role or status; ``display_name: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    role: TerminalRole | None = None
    status: TerminalStatus | None = None


class TerminalPublic(BaseModel):
    id: str
    channel: str
    channel_id: str
    type: str
    address: str = Field(description="Normalised: E.164, lower-case domain, `@domain`, …")
    display_name: str | None
    role: TerminalRole
    status: TerminalStatus
    created_at: str
    updated_at: str


def terminal_key(channel_id: str, kind: str, address: str) -> str:
    """What is unique per tenant: one address of one type on one channel."""
    return f"{channel_id}:{kind}:{address}"


def is_domain(kind: str, address: str) -> bool:
    return kind == "email" and address.startswith("@")


def checked_address(kind: TerminalType, address: str, allowed: tuple[str, ...]) -> str:
    """The normalised address of a terminal on a channel taking ``allowed`` sender
    types, or ValidationFailed naming ``type`` or ``address``."""
    if is_domain(kind, address) and kind in allowed:
        # A placeholder local part lets the one e-mail validator judge the domain.
        normal = normalise_email("postmaster" + address)
        if normal is None:
            raise _invalid([FieldError("address", "must be an e-mail address or @domain")])
        return "@" + normal.rpartition("@")[2]
    errors: list[FieldError] = []
    checked = check_terminal("terminal", Terminal(type=kind, address=address), allowed, errors)
    if errors:
        raise _invalid([FieldError(e.field.removeprefix("terminal."), e.message) for e in errors])
    return checked.address


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed("The terminal is not valid for this channel", errors=errors)


def sending_identities(terminals: Iterable[Mapping[str, Any]]) -> Senders:
    """The ``(type, address)`` of the active terminals that send."""
    return frozenset(
        (t["type"], t["address"])
        for t in terminals
        if t["status"] == "active" and t["role"] in SENDING_ROLES
    )


def owns(senders: Senders, sender_type: str, address: str) -> bool:
    """Whether a (normalised) sender is registered: exactly, or by its e-mail domain."""
    if (sender_type, address) in senders:
        return True
    if sender_type != "email" or "@" not in address:
        return False
    return ("email", "@" + address.rpartition("@")[2].lower()) in senders
