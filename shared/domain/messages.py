"""The message a client sends: its shape, as pydantic models (the API schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.domain.email_headers import header_problem
from shared.domain.encoding import b64decode_lenient_spaces
from shared.domain.names import DisplayName as NameShown

TerminalType = Literal["email", "phone", "alphanumeric", "telegram", "device", "topic", "url"]
ContentType = Literal["text", "html", "media", "template", "push"]
TERMINAL_TYPES: tuple[TerminalType, ...] = get_args(TerminalType)
CONTENT_TYPES: tuple[ContentType, ...] = get_args(ContentType)

MAX_TEXT = 65_536
MAX_FALLBACK_DEPTH = 3
MAX_ATTACHMENTS = 10


MAX_JSON_DEPTH = 32
MAX_CONTEXT_BYTES = 16_384
"""A message's context travels in every event of the message (each a Service Bus
message, at most 256 KB on Standard): bounded, so every accepted message's events fit."""
"""How deeply free-form JSON (context, template data) may nest: stored documents and
event payloads nest it further, and JSON encoders stop at a fixed depth."""


def json_depth_within(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` levels of objects and arrays."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        nested = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not nested:
            return True
        level = nested
    return False


def _shallow(value: Any) -> Any:
    if not json_depth_within(value):
        raise ValueError(f"nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A time with a zone, normalised to UTC (and refused if that overflows)."""
FreeJson = Annotated[dict[str, Any], AfterValidator(_shallow)]


def _header_safe(value: str | None) -> str | None:
    problem = None if value is None else header_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Text an e-mail may carry in a header (see shared.domain.email_headers).
Subject = Annotated[str, Field(max_length=998), AfterValidator(_header_safe)]
DisplayName = Annotated[NameShown, AfterValidator(_header_safe)]
FileName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_header_safe)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Terminal(Strict):
    """A sender or receiver: an address of a given type."""

    type: TerminalType
    address: str = Field(min_length=1, max_length=4096)
    display_name: DisplayName | None = None


class Attachment(Strict):
    filename: FileName
    content_type: str = Field(min_length=3, max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+$")
    content: str | None = Field(default=None, description="Base64 of the file's bytes.")
    url: str | None = Field(default=None, max_length=2048)

    @field_validator("content")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                b64decode_lenient_spaces(value)
            except ValueError:
                raise ValueError("is not base64") from None
        return value


class TextContent(Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class HtmlContent(Strict):
    type: Literal["html"]
    html: str = Field(min_length=1, max_length=200_000)
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class MediaContent(Strict):
    type: Literal["media"]
    url: str = Field(min_length=1, max_length=2048)
    media_type: str = Field(min_length=3, max_length=255)
    caption: str | None = Field(default=None, max_length=4096)


class TemplateContent(Strict):
    type: Literal["template"]
    template: str = Field(min_length=1, max_length=512)
    language: str | None = Field(default=None, max_length=32)
    data: FreeJson = Field(default_factory=dict)


class PushContent(Strict):
    type: Literal["push"]
    title: str | None = Field(default=None, max_length=1024)
    body: str | None = Field(default=None, max_length=4096)
    data: dict[str, str] = Field(default_factory=dict)


Content = Annotated[
    TextContent | HtmlContent | MediaContent | TemplateContent | PushContent,
    Field(discriminator="type"),
]


class SandboxOptions(Strict):
    """How the sandbox provider should behave for this message."""

    send: Literal["success", "fail", "transient", "throttle"] = "success"
    fail_times: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="With transient/throttle: fail this many calls, then succeed. "
        "Without it they fail every call.",
    )
    delivery: Literal["delivered", "failed", "none"] = "delivered"
    delay_ms: int = Field(default=0, ge=0, le=3_600_000, description="Delay of the receipt.")
    error_code: str | None = Field(default=None, max_length=64)
    error_reason: str | None = Field(default=None, max_length=512)
    retry_after_ms: int = Field(default=1000, ge=0, le=3_600_000)


class MessageOptions(Strict):
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    expires_at: UtcDatetime | None = None
    sandbox: SandboxOptions | None = None
    fallback_after: int | None = Field(
        default=None,
        ge=1,
        le=30 * 86_400,
        description="Seconds after `sent` within which a `delivered` receipt must arrive, "
        "else the fallback is sent (channels without receipts: `sent` counts as delivered).",
    )


class MessageCreate(Strict):
    """An outbound message as a client submits it."""

    channel: str = Field(min_length=1, max_length=64)
    receiver: Terminal
    sender: Terminal | None = None
    content: Content
    subject: Subject | None = None
    context: FreeJson = Field(default_factory=dict)
    options: MessageOptions = Field(default_factory=MessageOptions)
    send_at: UtcDatetime | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    fallback: MessageCreate | None = Field(
        default=None,
        description="Sent instead when this message fails for good, expires, or gets no "
        "delivery receipt within options.fallback_after; nests up to "
        f"{MAX_FALLBACK_DEPTH} deep. Its context is this message's.",
    )

    @field_validator("fallback")
    @classmethod
    def _shallow_fallback(cls, value: MessageCreate | None) -> MessageCreate | None:
        depth, node = 0, value
        while node is not None:
            depth += 1
            node = node.fallback
        if depth > MAX_FALLBACK_DEPTH:
            raise ValueError(f"nests deeper than {MAX_FALLBACK_DEPTH} fallbacks")
        return value

    @field_validator("context")
    @classmethod
    def _small_context(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50:
            raise ValueError("at most 50 keys")
        size = len(orjson.dumps(value))
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"at most {MAX_CONTEXT_BYTES} bytes of JSON (this is {size})")
        return value


class BatchCreate(BaseModel):
    """A batch: messages are validated one by one, so items are free-form here."""

    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)


class InboundCreate(Strict):
    """A simulated inbound message, as the sandbox provider would report it."""

    sender: Terminal
    receiver: Terminal | None = None
    content: Content
    subject: str | None = Field(default=None, max_length=998)
    provider_message_id: str | None = Field(default=None, max_length=256)


@lru_cache(maxsize=256)
def to_utc_text(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; the one time format in documents and answers.

    Cached: one request stamps many fields with the same instant."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
