"""Response schemas, for the OpenAPI document (answers are rendered directly)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.domain.channels import ChannelPublic
from shared.domain.messages import Terminal


class ProblemField(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details with OCM's stable ``code``."""

    type: str
    title: str
    status: int
    code: str = Field(description="Stable, machine-readable: CHANNEL_NOT_FOUND, …")
    detail: str
    instance: str | None = None
    errors: list[ProblemField] | None = None


class TimelineEntry(BaseModel):
    id: str | None = Field(default=None, description="The event id (absent on ignored entries).")
    type: str = Field(description="message.queued, message.sent, message.retrying, …")
    status: str
    at: str
    attempt: int | None = None
    provider_message_id: str | None = None
    error: dict[str, Any] | None = None
    next_attempt_at: str | None = None


class MessagePublic(BaseModel):
    id: str
    direction: str = Field(description="outbound or inbound")
    status: str = Field(
        description="scheduled, queued, sending, sent, delivered, read, failed, expired, "
        "cancelled (outbound); received (inbound)"
    )
    channel: str | None
    channel_id: str
    receiver: Terminal | None
    sender: Terminal | None
    content: dict[str, Any]
    subject: str | None = None
    context: dict[str, Any]
    options: dict[str, Any] | None = None
    tags: list[str]
    send_at: str | None = None
    expires_at: str | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    provider_message_id: str | None
    error: dict[str, Any] | None = None
    batch_id: str | None = None
    events: list[TimelineEntry]
    created_at: str
    updated_at: str


class MessageList(BaseModel):
    items: list[MessagePublic]
    next_cursor: str | None


class BatchItem(BaseModel):
    index: int
    id: str | None
    status: str = Field(description="queued, scheduled or rejected")
    error: dict[str, Any] | None


class BatchAccepted(BaseModel):
    batch_id: str
    items: list[BatchItem]


class ChannelList(BaseModel):
    items: list[ChannelPublic]
    next_cursor: str | None


class InboundAccepted(BaseModel):
    provider_message_id: str
    status: str = "accepted"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route."""
    described = {
        400: "Malformed JSON",
        401: "Missing or invalid credential",
        403: "The credential lacks the scope",
        404: "Not found (also another tenant's resource)",
        409: "Conflict (name taken, idempotency key reused or in use, state)",
        413: "Too large (request over 10 MiB, message over 256 KiB, batch over 1000)",
        422: "Validation failed; `errors` lists the fields",
        429: "Too many requests or attempts (`Retry-After` says when to try again)",
    }
    return {
        s: {
            "model": Problem,
            "description": described[s],
            "content": {"application/problem+json": {}},
        }
        for s in statuses
    }


class AppKeyInfo(BaseModel):
    prefix: str = Field(description="The key's public prefix (`ocm_<prefix>_…`).")
    created_at: str


class AppKeys(BaseModel):
    primary: AppKeyInfo | None
    secondary: AppKeyInfo | None


class AppPublic(BaseModel):
    id: str
    name: str
    description: str | None
    scopes: list[str]
    status: str = Field(description="active or disabled")
    keys: AppKeys
    client: dict[str, Any] | None = Field(
        default=None, description="`{created_at}` of the OAuth2 client secret, if issued"
    )
    created_at: str
    updated_at: str


class AppWithKey(BaseModel):
    app: AppPublic
    api_key: str = Field(description="The new key, shown this once: OCM keeps only a hash.")
    slot: str = Field(description="primary or secondary")


class ClientSecretIssued(BaseModel):
    app: AppPublic
    client_id: str = Field(description="The application's id")
    client_secret: str = Field(description="Shown this once: OCM keeps only a hash.")


class AppList(BaseModel):
    items: list[AppPublic]
    next_cursor: str | None


class AuditRecord(BaseModel):
    id: str
    at: str
    action: str = Field(description="channel.create, app.key.rotate, tenant.suspend, …")
    actor: dict[str, Any] = Field(description="`app_id` and `credential` (the key's id) used")
    target: dict[str, Any] = Field(description="What was acted on: type, id, name, fields")
    address: str | None = Field(description="The client's address")


class AuditList(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None


class UserPublic(BaseModel):
    id: str
    email: str
    name: str | None
    role: str = Field(description="viewer, developer, admin or owner")
    status: str = Field(description="invited, active or disabled")
    created_at: str
    updated_at: str


class UserInvited(BaseModel):
    user: UserPublic
    invitation_token: str = Field(
        description="Single-use, valid 7 days, for POST /api/v1/users/accept-invite; shown "
        "once (until OCM e-mails invitations itself)."
    )


class UserList(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None


class TokenPair(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
