"""Opt-outs: receivers who may not be sent to on a channel type, and the inbound
keywords (STOP, START, …) that add and remove them.

An opt-out is found by one point read: its id is derived from the tenant, the
channel type and the normalised address, so a send never queries.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.addresses import normalise_address
from shared.domain.ids import digest

OptOutReason = Literal["keyword", "bounce", "complaint", "unsubscribe", "manual"]

ADDRESS_TYPES: dict[str, str] = {
    "sms": "phone",
    "whatsapp": "phone",
    "email": "email",
    "telegram": "telegram",
    "push": "device",
}
"""The receiver's terminal type on each channel type that has one kind of receiver."""

OPT_OUT_TYPES = frozenset({"sms", "whatsapp", "email"})
"""Channel types whose receivers opt out (keywords, bounces, unsubscribes): sending
to a listed receiver on these is refused. Telegram users block the bot, push
receivers drop their token, chat rooms are the tenant's own."""

DEFAULT_STOP = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_START = ("START", "YES", "UNSTOP")

CHANNEL_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class OptOutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_type: str = Field(pattern=CHANNEL_TYPE_PATTERN, description="sms, whatsapp, email, …")
    address: str = Field(min_length=1, max_length=4096, description="Normalised when stored.")
    reason: OptOutReason = "manual"

    @field_validator("channel_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class OptOutPublic(BaseModel):
    id: str
    channel_type: str
    address: str
    reason: OptOutReason
    source: dict[str, str] = Field(description="Where it came from: message_id, keyword, …")
    created_at: str


def address_type(channel_type: str, address: str) -> str:
    """The terminal type of a receiver: fixed by most channel types; for those that
    carry several kinds (the sandbox), told by the address's shape."""
    fixed = ADDRESS_TYPES.get(channel_type)
    if fixed is not None:
        return fixed
    if address.startswith("+"):
        return "phone"
    if "@" in address[1:]:
        return "email"
    return "device"  # opaque: compared as given


def normalise_receiver(channel_type: str, address: str) -> str | None:
    """The form an opt-out is kept under, or None if the address is not valid.

    E-mail addresses are lower-cased whole: most mailboxes ignore the local part's
    case, and a missed opt-out is worse than a needless one.
    """
    trimmed = address.strip()
    kind = address_type(channel_type, trimmed)
    normal = normalise_address(kind, trimmed)
    return normal.lower() if normal is not None and kind == "email" else normal


def lookup_address(channel_type: str, address: str) -> str:
    """The address to look an opt-out up by: normalised if valid (no invalid address
    was ever stored, so the trimmed text then finds nothing, as it should)."""
    return normalise_receiver(channel_type, address) or address.strip()


def opt_out_id(tenant_id: str, channel_type: str, address: str) -> str:
    """``opt_`` and 130 bits of SHA-256 (base32) over tenant, type and normalised
    address: derived, so a send finds it by one point read; the tenant in the hash
    keeps ids unique across tenants."""
    hashed = digest(tenant_id, channel_type, address)
    return "opt_" + base64.b32encode(hashed).decode().lower()[:26]


def keyword_action(
    text: str, stop: Iterable[str], start: Iterable[str]
) -> Literal["stop", "start"] | None:
    """What an inbound text asks for: the whole message, trimmed and in any case, is
    the keyword (as carriers match it); "stop" wins if a word is in both lists."""
    word = text.strip().casefold()
    if not word:
        return None
    if word in {w.strip().casefold() for w in stop}:
        return "stop"
    if word in {w.strip().casefold() for w in start}:
        return "start"
    return None
