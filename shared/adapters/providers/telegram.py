"""The Telegram Bot API provider (telegram channels): a bot sends, its webhook receives.

Sending: ``POST {base_url}/bot<token>/<method>`` with JSON parameters. ``text``
goes to ``sendMessage`` (with the channel's ``parse_mode``), ``html`` to
``sendMessage`` with ``parse_mode: HTML``, ``media`` to ``sendPhoto`` (image/*),
``sendVideo`` (video/*), ``sendAudio`` (audio/*) or ``sendDocument`` (anything
else), with the URL for Telegram to fetch (a ``telegram-file:<file_id>`` URL, as
inbound media carry, re-sends that file by id) and the caption. The answer's
``result`` gives the provider message id ``<chat id>:<message_id>``. Telegram
sends no delivery receipts: ``sent`` is final. The API takes no idempotency key.

Errors (always a ``ProviderError``; kind, code), from the answer's ``error_code``,
``description`` and ``parameters``:

- egress guard refused the destination ........ permanent EGRESS_REFUSED
- connection failed, timeout .................. transient TELEGRAM_CONNECTION_FAILED/_TIMEOUT
- 429 flood control ........................... throttled TELEGRAM_THROTTLED, parameters.retry_after
- 400 with parameters.migrate_to_chat_id ...... permanent TELEGRAM_CHAT_MIGRATED
- 400 "chat not found" ........................ permanent TELEGRAM_CHAT_NOT_FOUND
- any other 400 ............................... permanent TELEGRAM_BAD_REQUEST
- 401, or a bot token that is not <id>:<key> .. permanent TELEGRAM_UNAUTHORIZED
- 403 (blocked by the user, user deactivated,
  bot kicked, cannot initiate a conversation) . permanent TELEGRAM_BLOCKED
- 5xx ......................................... transient TELEGRAM_HTTP_<status>
- other 4xx ................................... permanent TELEGRAM_HTTP_<status>

The bot token is part of every URL, so it never enters a reason: reasons come from
the API's descriptions with the token masked, and the URL lines httpx logs at INFO
are masked by a filter on its logger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.adapters.providers.http import (
    LazyClient,
    call,
    json_object,
    retry_after,
    status_error,
)
from shared.adapters.providers.telegram_callbacks import FILE_URL_SCHEME, TelegramCallbacks
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.ports import ProviderEnv, ProviderModule, SendRequest, SendResult

API_ORIGIN = "https://api.telegram.org"
PREFIX = "TELEGRAM"
BOT_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{1,128}")
_TOKEN_IN_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
_MEDIA_METHODS = (
    ("image/", "sendPhoto", "photo"),
    ("video/", "sendVideo", "video"),
    ("audio/", "sendAudio", "audio"),
)


class TelegramSettings(BaseModel):
    """Where the Bot API is and how messages look."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default=API_ORIGIN,
        max_length=2048,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The Bot API server (a local telegram-bot-api server, or a test peer).",
    )
    parse_mode: Literal["HTML", "MarkdownV2"] | None = Field(
        default=None, description="How Telegram formats text content and media captions."
    )
    disable_notification: bool = Field(
        default=False, description="Send silently: receivers get no notification sound."
    )

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class TelegramSender:
    """Sends telegram channels' messages through the Bot API, one HTTP call each."""

    def __init__(self, env: ProviderEnv) -> None:
        self._clients = LazyClient(
            allow_private=env.allow_private_egress,
            timeout=env.timeout_seconds,
            on_build=mask_tokens_in_httpx_logs,
        )

    async def send(self, request: SendRequest) -> SendResult:
        token = request.credentials.get("bot_token") or ""
        if not BOT_TOKEN.fullmatch(token):
            raise ProviderError(
                "permanent", "TELEGRAM_UNAUTHORIZED", "The bot token is missing or malformed"
            )
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        method, params = build_call(request.message, settings)
        base = str(settings.get("base_url") or API_ORIGIN).rstrip("/")
        response = await call(
            self._http(), PREFIX, "POST", f"{base}/bot{token}/{method}", json=params
        )
        answer = json_object(response)
        if not response.is_success:
            raise failure(response, answer, token)
        if answer.get("ok") is not True:
            raise ProviderError(
                "transient",
                "TELEGRAM_BAD_RESPONSE",
                "The Bot API answered without a result",
                provider_status=str(response.status_code),
            )
        return SendResult(provider_message_id=_provider_id(answer.get("result")))

    async def close(self) -> None:
        await self._clients.close()

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()


def build_call(
    message: Mapping[str, Any], settings: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The Bot API method and its JSON parameters for one message."""
    content: Mapping[str, Any] = message["content"]
    parse_mode = settings.get("parse_mode")
    params: dict[str, Any] = {
        "chat_id": chat_id(str(message["receiver"]["address"])),
        "disable_notification": bool(settings.get("disable_notification", False)),
    }
    kind = content.get("type")
    if kind == "text":
        return "sendMessage", {**params, "text": content["text"], **_mode(parse_mode)}
    if kind == "html":
        return "sendMessage", {**params, "text": content["html"], "parse_mode": "HTML"}
    if kind == "media":
        method, field = _media_method(str(content["media_type"]))
        params[field] = _file(str(content["url"]))
        if content.get("caption"):
            params |= {"caption": content["caption"], **_mode(parse_mode)}
        return method, params
    raise ProviderError(
        "permanent", "TELEGRAM_CONTENT_NOT_SUPPORTED", f"Telegram does not carry {kind} content"
    )


def chat_id(address: str) -> int | str:
    """A numeric chat id as the Integer the API documents; an @channelusername as is."""
    return int(address) if address.lstrip("-").isdigit() else address


def _mode(parse_mode: Any) -> dict[str, str]:
    return {"parse_mode": parse_mode} if parse_mode else {}


def _media_method(media_type: str) -> tuple[str, str]:
    lowered = media_type.lower()
    for prefix, method, field in _MEDIA_METHODS:
        if lowered.startswith(prefix):
            return method, field
    return "sendDocument", "document"


def _file(url: str) -> str:
    """What the API takes for a file: an HTTP URL it fetches itself, or a file_id."""
    return url.removeprefix(FILE_URL_SCHEME)


def _provider_id(result: Any) -> str | None:
    """``<chat id>:<message_id>``: message ids are unique only within their chat."""
    if not isinstance(result, dict):
        return None
    chat = result.get("chat")
    message_id = result.get("message_id")
    if not isinstance(chat, dict) or chat.get("id") is None or message_id is None:
        return None
    return f"{chat['id']}:{message_id}"


def failure(response: httpx.Response, answer: Mapping[str, Any], token: str) -> ProviderError:
    """The ProviderError for an unsuccessful Bot API answer."""
    status = response.status_code
    description = mask(str(answer.get("description") or f"HTTP {status}"), token)[:1000]
    parameters = answer.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    if status == 429:
        wait = parameters.get("retry_after")
        return ProviderError(
            "throttled",
            "TELEGRAM_THROTTLED",
            description,
            retry_after=float(wait) if isinstance(wait, int | float) else retry_after(response),
            provider_status="429",
        )
    if parameters.get("migrate_to_chat_id") is not None:
        new_chat = str(parameters["migrate_to_chat_id"])
        return ProviderError(
            "permanent",
            "TELEGRAM_CHAT_MIGRATED",
            f"{description}; send to chat {new_chat} instead",
            provider_status=str(status),
            details={"migrate_to_chat_id": new_chat},
        )
    code = _CODES.get(status)
    if status == 400 and "chat not found" in description.lower():
        code = "TELEGRAM_CHAT_NOT_FOUND"
    return status_error(response, PREFIX, description, code=code)


_CODES = {400: "TELEGRAM_BAD_REQUEST", 401: "TELEGRAM_UNAUTHORIZED", 403: "TELEGRAM_BLOCKED"}


def mask(text: str, token: str) -> str:
    """``text`` without the bot token's secret part (the part after the colon)."""
    secret = token.partition(":")[2]
    return text.replace(secret, "***") if secret else text


class _MaskBotTokens(logging.Filter):
    """httpx logs every request's URL at INFO, and a Bot API URL holds the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _TOKEN_IN_PATH.sub("/bot***", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_tokens_in_httpx_logs() -> None:
    """Install the mask on httpx's logger (once; it only touches Bot API paths)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskBotTokens) for f in logger.filters):
        logger.addFilter(_MaskBotTokens())


__all__ = ["TelegramSender", "TelegramSettings", "build_call", "failure", "mask"]


PROVIDER = ProviderModule(
    name="telegram",
    specs=(
        ProviderSpec(
            provider="telegram",
            type="telegram",
            description="A Telegram bot through the Bot API; inbound messages by webhook.",
            settings=TelegramSettings,
            credentials=(
                CredentialField(
                    "bot_token",
                    secret=True,
                    required=True,
                    description="The token @BotFather gave the bot (<bot id>:<key>)",
                ),
                CredentialField(
                    "webhook_secret",
                    secret=True,
                    required=False,
                    description="The secret_token given to setWebhook (1-256 of A-Z a-z 0-9 _ -); "
                    "required to receive messages",
                ),
            ),
            destination=("base_url",),
            receiver_types=("telegram",),
            sender_types=("telegram",),
            content_types=("text", "html", "media"),
            directions=("outbound", "inbound"),
            receipts=False,
            attachments=False,
            default=True,
            rate_per_second=30.0,
            callbacks=True,
        ),
    ),
    build=TelegramSender,
    callbacks=TelegramCallbacks(),
)
