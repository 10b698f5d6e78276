"""The SendGrid provider (email channels), on SendGrid's v3 Web API.

One ``POST {base_url}/v3/mail/send`` per message, ``Authorization: Bearer <api_key>``:
one personalization to the receiver carrying ``custom_args`` ``ocm_message_id`` and
``ocm_channel_id`` (SendGrid echoes them in every Event Webhook event, which is how
receipts find their message), ``content`` text/plain first then text/html, base64
attachments, the channel's ``categories`` and sandbox mode. A ``template`` content
sends a dynamic template (``template_id``, ``dynamic_template_data``). SendGrid
answers 202 with the ``X-Message-Id`` header: the provider message id (the prefix of
every event's ``sg_message_id``). Mail/send takes no idempotency key.

Errors (always a ``ProviderError``; kind, code):

- egress guard refused the destination ..... permanent EGRESS_REFUSED
- connection failed, timeout ............... transient SENDGRID_CONNECTION_FAILED, SENDGRID_TIMEOUT
- 400 (SendGrid's ``errors`` as reason) .... permanent SENDGRID_BAD_REQUEST
- 401 bad or revoked key, no key ........... permanent SENDGRID_UNAUTHORIZED
- 403 unverified sender, missing scope ..... permanent SENDGRID_FORBIDDEN
- 413 request over 30 MB ................... permanent SENDGRID_PAYLOAD_TOO_LARGE
- 429 ...................................... throttled SENDGRID_THROTTLED (Retry-After, else
  X-RateLimit-Reset)
- 408, 5xx ................................. transient SENDGRID_HTTP_<status>
- other 4xx, redirects ..................... permanent SENDGRID_HTTP_<status>
- attachment by URL ........................ permanent ATTACHMENT_URL_NOT_SUPPORTED
- no/bad sender or receiver address ........ permanent SENDGRID_INVALID_ADDRESS

The API key never appears in an error. Callbacks (Event Webhook, Inbound Parse)
live in ``sendgrid_callbacks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.adapters.providers.email_mime import email_header, html_to_text, invalid
from shared.adapters.providers.http import LazyClient, call, status_error
from shared.adapters.providers.sendgrid_callbacks import SendGridCallbacks
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.ports import Clock, ProviderModule, SendRequest, SendResult

API_ORIGIN = "https://api.sendgrid.com"
PREFIX = "SENDGRID"
_CODES = {
    400: "SENDGRID_BAD_REQUEST",
    401: "SENDGRID_UNAUTHORIZED",
    403: "SENDGRID_FORBIDDEN",
    413: "SENDGRID_PAYLOAD_TOO_LARGE",
}

Category = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$")]


class SendGridSettings(BaseModel):
    """Where SendGrid's API is, and what every message of the channel carries."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default=API_ORIGIN,
        pattern=r"^https?://[^\s/?#]+/?$",
        max_length=2048,
        description="The API origin; https://api.eu.sendgrid.com for EU regional subusers.",
    )
    categories: list[Category] = Field(
        default_factory=list,
        max_length=10,
        description="SendGrid categories (statistics), at most 10, ASCII.",
    )
    sandbox_mode: bool = Field(
        default=False, description="SendGrid validates each request but sends nothing."
    )

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        return value


class SendGridSender:
    """Sends email channels' messages through SendGrid's mail/send."""

    def __init__(self, *, clock: Clock, allow_private_egress: bool, timeout: float = 30.0) -> None:
        self._clock = clock
        self._clients = LazyClient(allow_private=allow_private_egress, timeout=timeout)

    async def send(self, request: SendRequest) -> SendResult:
        api_key = request.credentials.get("api_key") or ""
        if not api_key:
            raise ProviderError(
                "permanent", "SENDGRID_UNAUTHORIZED", "The channel has no api_key credential"
            )
        body = mail_send_body(request.message, request.channel)
        base = str((request.channel.get("settings") or {}).get("base_url") or API_ORIGIN)
        response = await call(
            self._http(),
            PREFIX,
            "POST",
            base.rstrip("/") + "/v3/mail/send",
            content=orjson.dumps(body),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        if response.is_success:  # 202; 200 without an id in sandbox mode
            return SendResult(provider_message_id=response.headers.get("x-message-id") or None)
        raise self._error(response, api_key)

    async def close(self) -> None:
        await self._clients.close()

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()

    def _error(self, response: httpx.Response, api_key: str) -> ProviderError:
        reason = _reason(response).replace(api_key, "***")
        error = status_error(response, PREFIX, reason, code=_CODES.get(response.status_code))
        if error.kind == "throttled" and error.retry_after is None:
            reset = response.headers.get("x-ratelimit-reset", "").strip()
            if reset.isdigit():
                error.retry_after = max(0.0, int(reset) - self._clock.now().timestamp())
        return error


def _reason(response: httpx.Response) -> str:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}`` as one line."""
    try:
        errors = orjson.loads(response.content).get("errors")
    except (orjson.JSONDecodeError, AttributeError):
        errors = None
    texts = [
        f"{e['field']}: {e.get('message')}" if e.get("field") else str(e.get("message"))
        for e in errors or []
        if isinstance(e, dict) and e.get("message")
    ]
    return ("; ".join(texts) or f"SendGrid answered HTTP {response.status_code}")[:1000]


# -- the request body ----------------------------------------------------------


def mail_send_body(message: Mapping[str, Any], channel: Mapping[str, Any]) -> dict[str, Any]:
    """The mail/send JSON for one message (the same on every attempt)."""
    settings: Mapping[str, Any] = channel.get("settings") or {}
    content: Mapping[str, Any] = message.get("content") or {}
    personalization: dict[str, Any] = {
        "to": [_party(message.get("receiver"), "receiver")],
        "custom_args": {"ocm_message_id": str(message["id"]), "ocm_channel_id": str(channel["id"])},
    }
    headers = message.get("email_headers")
    if isinstance(headers, Mapping) and headers:
        personalization["headers"] = {
            str(k): email_header(str(v), str(k)) for k, v in headers.items()
        }
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _party(message.get("sender") or channel.get("default_sender"), "sender"),
    }
    subject = email_header(str(message.get("subject") or ""), "subject")
    if subject:
        body["subject"] = subject
    if content.get("type") == "template":
        body["template_id"] = str(content["template"])
        personalization["dynamic_template_data"] = dict(content.get("data") or {})
    else:
        body["content"] = _content(content)
    attachments = _attachments(content)
    if attachments:
        body["attachments"] = attachments
    if settings.get("categories"):
        body["categories"] = list(settings["categories"])
    if settings.get("sandbox_mode"):
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def _party(terminal: Mapping[str, Any] | None, role: str) -> dict[str, str]:
    address = str((terminal or {}).get("address") or "")
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        raise invalid(f"the {role} is not an email address", "SENDGRID_INVALID_ADDRESS")
    party = {"email": address}
    name = email_header(str((terminal or {}).get("display_name") or ""), f"{role}'s display name")
    if name:
        party["name"] = name
    return party


def _content(content: Mapping[str, Any]) -> list[dict[str, str]]:
    if content.get("type") == "text":
        return [{"type": "text/plain", "value": str(content["text"])}]
    if content.get("type") == "html":
        markup = str(content["html"])
        plain = str(content.get("text") or html_to_text(markup))
        return [{"type": "text/plain", "value": plain}, {"type": "text/html", "value": markup}]
    raise invalid(f"content type {content.get('type')!r} cannot be sent by email")


def _attachments(content: Mapping[str, Any]) -> list[dict[str, str]]:
    attachments = []
    for attachment in content.get("attachments") or []:
        if attachment.get("url") or not attachment.get("content"):
            raise invalid(
                "attachments must carry their content (base64); URLs are not fetched",
                "ATTACHMENT_URL_NOT_SUPPORTED",
            )
        attachments.append(
            {
                "content": "".join(str(attachment["content"]).split()),
                "filename": email_header(
                    str(attachment.get("filename") or "attachment"), "file name"
                ),
                "type": str(attachment.get("content_type") or "application/octet-stream"),
                "disposition": "attachment",
            }
        )
    return attachments


__all__ = ["SendGridSender", "SendGridSettings", "mail_send_body"]


PROVIDER = ProviderModule(
    name="sendgrid",
    specs=(
        ProviderSpec(
            provider="sendgrid",
            type="email",
            description="Twilio SendGrid's v3 Mail Send API, with Event Webhook receipts "
            "and Inbound Parse.",
            settings=SendGridSettings,
            credentials=(
                CredentialField("api_key", secret=True, required=True, description="API key"),
                CredentialField(
                    "event_webhook_public_key",
                    secret=False,
                    required=False,
                    description="Signed Event Webhook verification key (base64); "
                    "without it event callbacks are refused",
                ),
                CredentialField(
                    "inbound_parse_username",
                    secret=True,
                    required=False,
                    description="Basic-auth user put in the Inbound Parse URL",
                ),
                CredentialField(
                    "inbound_parse_password",
                    secret=True,
                    required=False,
                    description="Basic-auth password put in the Inbound Parse URL",
                ),
                CredentialField(
                    "inbound_parse_public_key",
                    secret=False,
                    required=False,
                    description="Public key of the Inbound Parse security policy (base64)",
                ),
            ),
            destination=("base_url",),
            receiver_types=("email",),
            sender_types=("email",),
            content_types=("text", "html", "template"),
            directions=("outbound", "inbound"),
            receipts=True,
            attachments=True,
            attachment_sources=("content",),
            rate_per_second=None,  # SendGrid publishes no mail/send rate; 429s pace it
            callbacks=True,
        ),
    ),
    build=lambda env: SendGridSender(
        clock=env.clock, allow_private_egress=env.allow_private_egress, timeout=env.timeout_seconds
    ),
    callbacks=SendGridCallbacks(),
)
