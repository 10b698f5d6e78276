"""Twilio Programmable Messaging: SMS/MMS (``type: sms``) and WhatsApp (``type: whatsapp``).

A send is ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded: ``To``, then ``MessagingServiceSid`` (the channel's setting) or ``From``
(the message's sender), ``Body``, ``MediaUrl`` once per media, ``ContentSid`` and
``ContentVariables`` for a WhatsApp template, and ``StatusCallback`` when the channel
has ``status_callback_url``. WhatsApp addresses travel as ``whatsapp:+E164``. HTTP Basic
auth is the Account SID and Auth Token, or an API key's SID and secret. Twilio answers
201 with the Message's ``sid``. It takes no idempotency key, so a send whose answer was
lost (a timeout) may go out twice once retried.

Errors (always a ``ProviderError``); Twilio's error code becomes ``TWILIO_<code>``:

- 429, or code 20429 / 21611 / 63017 (rate, queue full) ... throttled, Retry-After kept
- 408, 5xx, or code 20500 / 20503 ........................ transient
- any other 4xx (20003 auth, 21211, 21408, 21610, 21614 …) permanent
- an answer without a Twilio code ......................... as ``http.status_error`` maps it
- attachment given as base64, unsupported content ......... permanent TWILIO_INVALID_MESSAGE

Callbacks (status callbacks, incoming messages) live in ``twilio_callbacks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.providers.http import (
    LazyClient,
    answer_error,
    call,
    json_object,
    status_error,
)
from shared.adapters.providers.twilio_callbacks import TwilioCallbacks
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.ports import ProviderEnv, ProviderModule, SendRequest, SendResult

API_ORIGIN = "https://api.twilio.com"
PREFIX = "TWILIO"
_ORIGIN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?(\?[^\s#]*)?$"
_UNSUBSCRIBED = 21610
_THROTTLED = frozenset({20429, 21611, 63017})
_TRANSIENT = frozenset({20500, 20503})

Form = dict[str, str | list[str]]


class TwilioSettings(BaseModel):
    """Where Twilio's API is, and how a message names its sender and callback."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default=API_ORIGIN,
        pattern=_ORIGIN,
        max_length=2048,
        description="The API origin: Twilio's, a regional one, or a test peer.",
    )
    messaging_service_sid: str | None = Field(
        default=None,
        pattern=r"^MG[0-9a-fA-F]{32}$",
        description="Send through this Messaging Service (MessagingServiceSid) "
        "instead of naming the message's sender as From.",
    )
    status_callback_url: str | None = Field(
        default=None,
        pattern=_URL,
        max_length=2048,
        description="Sent as StatusCallback, for delivery receipts: "
        "https://<ocm>/api/v1/callbacks/twilio/<channel id> (the channel's callback_url).",
    )


class TwilioSender:
    """Sends sms and whatsapp channels' messages through Twilio's Messages API."""

    def __init__(self, env: ProviderEnv) -> None:
        self._clients = LazyClient(
            allow_private=env.allow_private_egress, timeout=env.timeout_seconds
        )

    async def send(self, request: SendRequest) -> SendResult:
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        account_sid, auth = _auth(request.credentials)
        base = str(settings.get("base_url") or API_ORIGIN).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        form = message_form(request.message, request.channel)
        response = await call(self._http(), PREFIX, "POST", url, data=form, auth=auth)
        if response.status_code in (200, 201):
            return SendResult(provider_message_id=_sid(response))
        raise api_error(response, secrets=(auth[1],))

    async def close(self) -> None:
        await self._clients.close()

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()


def message_form(message: Mapping[str, Any], channel: Mapping[str, Any]) -> Form:
    """The Messages API form for one message on one channel."""
    settings: Mapping[str, Any] = channel.get("settings") or {}
    whatsapp = channel.get("type") == "whatsapp"
    form: Form = {"To": _address(message["receiver"]["address"], whatsapp)}
    sender = message.get("sender") or channel.get("default_sender")
    if settings.get("messaging_service_sid"):
        form["MessagingServiceSid"] = str(settings["messaging_service_sid"])
    elif sender:
        form["From"] = _address(sender["address"], whatsapp)
    else:
        raise invalid("the message has no sender and the channel no messaging_service_sid")
    form.update(_content(message["content"], whatsapp))
    if settings.get("status_callback_url"):
        form["StatusCallback"] = str(settings["status_callback_url"])
    return form


def _address(address: str, whatsapp: bool) -> str:
    return f"whatsapp:{address}" if whatsapp else address


def _content(content: Mapping[str, Any], whatsapp: bool) -> Form:
    kind = content.get("type")
    if kind == "text":
        media = [_attachment_url(a) for a in content.get("attachments") or []]
        return {"Body": content["text"], **({"MediaUrl": media} if media else {})}
    if kind == "media":
        form: Form = {"MediaUrl": [content["url"]]}
        if content.get("caption"):
            form["Body"] = content["caption"]
        return form
    if kind == "template" and whatsapp:
        form = {"ContentSid": content["template"]}
        if content.get("data"):
            form["ContentVariables"] = orjson.dumps(content["data"]).decode()
        return form
    raise invalid(f"Twilio cannot carry {kind} content on this channel")


def _attachment_url(attachment: Mapping[str, Any]) -> str:
    if not attachment.get("url"):
        raise invalid("Twilio fetches media by URL: give attachments a url, not base64 content")
    return str(attachment["url"])


def invalid(reason: str) -> ProviderError:
    return ProviderError("permanent", f"{PREFIX}_INVALID_MESSAGE", reason)


def _auth(credentials: Mapping[str, str]) -> tuple[str, tuple[str, str]]:
    """The account SID for the path, and the Basic auth pair (API key first)."""
    account_sid = credentials.get("account_sid", "")
    if credentials.get("api_key_sid"):
        user, password = credentials["api_key_sid"], credentials.get("api_key_secret", "")
    else:
        user, password = account_sid, credentials.get("auth_token", "")
    if not (account_sid and user and password):
        raise ProviderError(
            "permanent",
            f"{PREFIX}_CREDENTIALS_MISSING",
            "Set account_sid with auth_token (or api_key_sid with api_key_secret)",
        )
    return account_sid, (user, password)


def _sid(response: httpx.Response) -> str:
    sid = json_object(response).get("sid")
    if not isinstance(sid, str) or not sid:
        raise ProviderError(
            "transient",
            f"{PREFIX}_BAD_RESPONSE",
            "Twilio accepted the message without a sid",
            provider_status=str(response.status_code),
        )
    return sid


def api_error(response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> ProviderError:
    """Twilio's error answer ``{code, message, more_info, status}`` as a ProviderError."""
    body = json_object(response)
    reason = str(body.get("message") or f"Twilio answered HTTP {response.status_code}")[:1000]
    for secret in secrets:
        if secret:
            reason = reason.replace(secret, "***")
    code = body.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int):
        return status_error(response, PREFIX, reason)
    name = f"{PREFIX}_{code}"
    if code in _THROTTLED:
        return answer_error(response, "throttled", name, reason)
    if code in _TRANSIENT:
        return answer_error(response, "transient", name, reason)
    error = status_error(response, PREFIX, reason, code=name)
    if code == _UNSUBSCRIBED:
        # The receiver replied STOP to Twilio (or the carrier): opt them out here too.
        error.details["opt_out"] = "unsubscribe"
    return error


_CREDENTIALS = (
    CredentialField("account_sid", secret=False, required=True, description="AC…"),
    CredentialField(
        "auth_token",
        secret=True,
        required=True,
        description="Signs Twilio's callbacks; authenticates sends unless an API key is set",
    ),
    CredentialField("api_key_sid", secret=False, required=False, description="SK… (optional)"),
    CredentialField("api_key_secret", secret=True, required=False, description="The key's secret"),
)


def _spec(channel_type: str, description: str, **capabilities: Any) -> ProviderSpec:
    return ProviderSpec(
        provider="twilio",
        type=channel_type,
        description=description,
        settings=TwilioSettings,
        credentials=_CREDENTIALS,
        destination=("base_url",),
        receiver_types=("phone",),
        directions=("outbound", "inbound"),
        receipts=True,
        attachments=True,
        attachment_sources=("url",),
        callbacks=True,
        **capabilities,
    )


PROVIDER = ProviderModule(
    name="twilio",
    specs=(
        _spec(
            "sms",
            "Twilio Programmable Messaging: SMS, and MMS by media URL.",
            sender_types=("phone", "alphanumeric"),
            content_types=("text", "media"),
            default=True,
            rate_per_second=1.0,  # a long code: one segment per second
        ),
        _spec(
            "whatsapp",
            "WhatsApp through a Twilio WhatsApp sender; templates by ContentSid.",
            sender_types=("phone",),
            content_types=("text", "media", "template"),
            rate_per_second=10.0,  # a WhatsApp sender's default text throughput
        ),
    ),
    build=TwilioSender,
    callbacks=TwilioCallbacks(),
)

__all__ = ["PROVIDER", "TwilioSender", "TwilioSettings", "api_error", "message_form"]
