"""Channels: the resource, and what each provider can carry (its capabilities)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import Terminal

ChannelStatus = Literal["active", "paused", "deleted"]
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


@dataclass(frozen=True, slots=True)
class CredentialField:
    name: str
    secret: bool
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What one provider of a channel type carries; the portal builds forms from it."""

    provider: str
    type: str
    description: str
    settings: builtins.type[BaseModel]
    credentials: tuple[CredentialField, ...]
    receiver_types: tuple[str, ...]
    sender_types: tuple[str, ...]
    content_types: tuple[str, ...]
    directions: tuple[str, ...]
    receipts: bool
    attachments: bool
    default: bool = False
    """The provider a channel of this type gets when it names none."""
    rate_per_second: float | None = None
    """The provider's documented send rate per sender, the default pace of a channel."""
    callbacks: bool = False
    """Whether it calls ``/api/v1/callbacks/{provider}/{channel_id}``."""
    attachment_sources: tuple[str, ...] = ("content", "url")
    """How attachments may come: base64 ``content``, and/or a ``url`` the provider fetches."""
    destination: tuple[str, ...] = ()
    """The settings that decide where the credentials are sent (an API origin, an SMTP
    host, port and security): changing one drops them."""
    receiver_problem: Callable[[str, str], str | None] | None = None
    """The provider's own check of a receiver (type, address) beyond its type's rules:
    what is wrong with it, or None (a Web Push subscription's JSON, say)."""

    def settings_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self.settings.model_json_schema()
        return schema


class Catalog:
    """Every (type, provider) the platform can run, built from the provider modules."""

    def __init__(self, specs: Iterable[ProviderSpec]) -> None:
        self.specs: dict[tuple[str, str], ProviderSpec] = {}
        self.defaults: dict[str, str] = {}
        for spec in specs:
            self.specs[(spec.type, spec.provider)] = spec
            if spec.default or spec.type not in self.defaults:
                self.defaults[spec.type] = spec.provider

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(sorted(self.specs.values(), key=lambda s: (s.type, not s.default, s.provider)))

    def resolve(self, channel_type: str, provider: str | None) -> ProviderSpec:
        """The spec for a type (and optional provider), or a validation error."""
        name = provider or self.defaults.get(channel_type, "")
        spec = self.specs.get((channel_type, name))
        if spec is None:
            known = sorted(f"{t}/{p}" for t, p in self.specs)
            raise ValidationFailed(
                f"Unknown channel type or provider; known: {', '.join(known)}",
                code="CHANNEL_TYPE_UNKNOWN",
                errors=[FieldError("provider" if provider else "type", "unknown")],
            )
        return spec


class DeliveryPolicy(BaseModel):
    """How a channel paces and hands over its messages (all optional)."""

    model_config = ConfigDict(extra="forbid")

    rate_per_second: float | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="Sends per second across every instance; unset: the provider's "
        "documented default (GET /api/v1/channel-types); 0: unpaced.",
    )
    backups: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Channels of the same type that take over, in order, when this one "
        "keeps failing transiently or is paused (failover).",
    )
    failover_after: int = Field(
        default=3,
        ge=1,
        le=50,
        description="Transient failures of a message on this channel before it moves to "
        "the next backup.",
    )
    max_segments: int = Field(
        default=10,
        ge=1,
        le=100,
        description="SMS: the longest text accepted, in segments (GSM-7: 160 characters "
        "alone, 153 each when split; UCS-2: 70 and 67).",
    )
    stop_keywords: list[str] | None = Field(
        default=None,
        max_length=20,
        description="SMS, WhatsApp: inbound texts that opt the sender out; unset: STOP, "
        "STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT.",
    )
    start_keywords: list[str] | None = Field(
        default=None,
        max_length=20,
        description="Inbound texts that opt the sender back in; unset: START, YES, UNSTOP.",
    )

    @field_validator("backups")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        lowered = [v.lower() for v in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("names a channel twice")
        return lowered


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique per tenant; immutable.")
    type: str = Field(min_length=1, max_length=32, description="sandbox, email, …")
    provider: str | None = Field(default=None, description="Defaults by type.")
    description: str | None = Field(default=None, max_length=1024)
    settings: dict[str, Any] = Field(default_factory=dict)
    default_sender: Terminal | None = None
    status: Literal["active", "paused"] = "active"
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=1024)
    settings: dict[str, Any] | None = None
    default_sender: Terminal | None = None
    status: Literal["active", "paused"] | None = None
    policy: DeliveryPolicy | None = None


class ChannelPublic(BaseModel):
    id: str
    name: str
    type: str
    provider: str
    description: str | None
    settings: dict[str, Any]
    default_sender: Terminal | None
    status: ChannelStatus
    policy: DeliveryPolicy
    has_credentials: bool
    throttled_until: str | None = None
    callback_url: str | None = None
    created_at: str
    updated_at: str


def validate_settings(spec: ProviderSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """Check a provider's settings; return them normalised (defaults filled in)."""
    try:
        model = spec.settings.model_validate(settings)
    except ValidationError as exc:
        raise ValidationFailed(
            "The channel settings are not valid",
            errors=[
                FieldError("settings." + ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()
            ],
        ) from None
    settings_out: dict[str, Any] = model.model_dump(mode="json")
    return settings_out


def validate_credentials(spec: ProviderSpec, credentials: dict[str, Any]) -> dict[str, str]:
    known = {f.name: f for f in spec.credentials}
    errors = [FieldError(k, "unknown credential field") for k in credentials if k not in known]
    errors += [
        FieldError(f.name, "required")
        for f in spec.credentials
        if f.required and not credentials.get(f.name)
    ]
    errors += [
        FieldError(k, "must be a string") for k, v in credentials.items() if not isinstance(v, str)
    ]
    if errors:
        raise ValidationFailed("The credentials are not valid", errors=errors)
    return {k: str(v) for k, v in credentials.items()}
