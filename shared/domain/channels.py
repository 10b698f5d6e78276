"""Channels: the resource, and what each provider can carry (its capabilities)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import CONTENT_TYPES, TERMINAL_TYPES, Terminal

ChannelStatus = Literal["active", "paused", "deleted"]
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class SandboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpSettings(BaseModel):
    """Where and how to reach an SMTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection (port 587); ssl: TLS from the "
        "first byte (port 465); none: plain text (development only).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=120)
    local_hostname: str | None = Field(default=None, max_length=253)


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

    def settings_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self.settings.model_json_schema()
        return schema


PROVIDERS: dict[str, ProviderSpec] = {
    "sandbox": ProviderSpec(
        provider="sandbox",
        type="sandbox",
        description="Simulates a provider; driven per message by options.sandbox.",
        settings=SandboxSettings,
        credentials=(),
        receiver_types=TERMINAL_TYPES,
        sender_types=TERMINAL_TYPES,
        content_types=CONTENT_TYPES,
        directions=("outbound", "inbound"),
        receipts=True,
        attachments=True,
    ),
    "smtp": ProviderSpec(
        provider="smtp",
        type="email",
        description="Any SMTP server (STARTTLS, implicit TLS or plain), with AUTH.",
        settings=SmtpSettings,
        credentials=(
            CredentialField("username", secret=False, required=False, description="AUTH user"),
            CredentialField("password", secret=True, required=False, description="AUTH password"),
        ),
        receiver_types=("email",),
        sender_types=("email",),
        content_types=("text", "html"),
        directions=("outbound",),
        receipts=False,
        attachments=True,
    ),
}

DEFAULT_PROVIDER: dict[str, str] = {"sandbox": "sandbox", "email": "smtp"}


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


def resolve_provider(channel_type: str, provider: str | None) -> ProviderSpec:
    """The provider spec for a type (and optional provider), or a validation error."""
    name = provider or DEFAULT_PROVIDER.get(channel_type)
    spec = PROVIDERS.get(name or "")
    if spec is None or spec.type != channel_type:
        known = sorted({f"{s.type}/{s.provider}" for s in PROVIDERS.values()})
        raise ValidationFailed(
            f"Unknown channel type or provider; known: {', '.join(known)}",
            code="CHANNEL_TYPE_UNKNOWN",
            errors=[FieldError("provider" if provider else "type", "unknown")],
        )
    return spec


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
