"""Channels: the resource, and what each provider can carry (its capabilities)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
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


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique per tenant; immutable.")
    type: str = Field(min_length=1, max_length=32, description="sandbox, email, …")
    provider: str | None = Field(default=None, description="Defaults by type.")
    description: str | None = Field(default=None, max_length=1024)
    settings: dict[str, Any] = Field(default_factory=dict)
    default_sender: Terminal | None = None
    status: Literal["active", "paused"] = "active"

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


class ChannelPublic(BaseModel):
    id: str
    name: str
    type: str
    provider: str
    description: str | None
    settings: dict[str, Any]
    default_sender: Terminal | None
    status: ChannelStatus
    has_credentials: bool
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
