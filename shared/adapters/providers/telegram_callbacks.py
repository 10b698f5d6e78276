"""Telegram's webhook: verify the secret token, turn message updates into inbound events.

Telegram signs nothing: ``setWebhook``'s ``secret_token`` comes back verbatim in
the ``X-Telegram-Bot-Api-Secret-Token`` header of every update it POSTs, and the
channel's ``webhook_secret`` credential must equal it (constant-time compare).

Of the Update kinds, ``message`` and ``channel_post`` become inbound messages;
every other kind (edits, callback queries, member changes, …) and messages OCM
cannot carry (stickers, locations, polls, service messages) are acknowledged with
an empty 200 and no event, since Telegram re-sends updates that are not 2xx.
Media arrive as ``media`` content whose URL is ``telegram-file:<file_id>``: Bot API
download links embed the bot token, so OCM keeps the file id, which ``getFile``
resolves and which sending media content re-sends as is.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.domain.errors import CallbackInvalid, CallbackRejected
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import CallbackReply, CallbackRequest, ProviderEvent

VERIFY_HEADER = "x-telegram-bot-api-secret-token"
FILE_URL_SCHEME = "telegram-file:"
MESSAGE_KINDS = ("message", "channel_post")
# Where a Message carries a file, and the type when it names none; photos are
# always JPEG. ``animation`` precedes ``document``, which Telegram also sets for it.
MEDIA_FIELDS = (
    ("animation", "video/mp4"),
    ("video", "video/mp4"),
    ("video_note", "video/mp4"),
    ("audio", "audio/mpeg"),
    ("voice", "audio/ogg"),
    ("document", "application/octet-stream"),
)
_MIME = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class TelegramCallbacks:
    def verify(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> None:
        expected = credentials.get("webhook_secret") or ""
        given = request.headers.get(VERIFY_HEADER)
        if not expected or given is None:
            raise CallbackRejected("The webhook secret token is missing")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise CallbackRejected("The webhook secret token does not match")

    def parse(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> CallbackReply:
        update = _update(request.body)
        event = inbound_event(update, channel)
        return CallbackReply(events=(event,) if event else ())


def _update(body: bytes) -> dict[str, Any]:
    try:
        update = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CallbackInvalid("The update is not JSON") from None
    if not isinstance(update, dict) or not _is_int(update.get("update_id")):
        raise CallbackInvalid("The update has no update_id")
    return update


def inbound_event(update: Mapping[str, Any], channel: Document) -> ProviderEvent | None:
    """The inbound event of a message update, or None for what OCM does not carry."""
    kind = next((k for k in MESSAGE_KINDS if k in update), None)
    if kind is None:
        return None
    message = update[kind]
    chat = message.get("chat") if isinstance(message, dict) else None
    if not isinstance(chat, dict) or not _is_int(chat.get("id")):
        raise CallbackInvalid(f"The {kind} has no chat")
    if not _is_int(message.get("message_id")):
        raise CallbackInvalid(f"The {kind} has no message_id")
    content = _content(message)
    if content is None:
        return None
    payload: dict[str, Any] = {
        "event_id": str(update["update_id"]),
        "provider_message_id": f"{chat['id']}:{message['message_id']}",
        "sender": _sender(message, chat),
        "receiver": channel.get("default_sender"),
        "content": content,
    }
    # A date no calendar holds is dropped: the time OCM received the update stands.
    with contextlib.suppress(ValueError, OverflowError, OSError, TypeError):
        payload["received_at"] = to_utc_text(datetime.fromtimestamp(message["date"], UTC))
    return ProviderEvent(kind="inbound", payload=payload)


def _sender(message: Mapping[str, Any], chat: Mapping[str, Any]) -> dict[str, str]:
    """The user who wrote, or the chat itself for channel posts (they have no ``from``)."""
    user = message.get("from")
    if isinstance(user, dict) and _is_int(user.get("id")):
        name = " ".join(str(user[k]) for k in ("first_name", "last_name") if user.get(k))
        terminal = {"type": "telegram", "address": str(user["id"])}
        display = name or user.get("username")
    else:
        terminal = {"type": "telegram", "address": str(chat["id"])}
        display = chat.get("title") or chat.get("username")
    if display:
        terminal["display_name"] = str(display)[:256]
    return terminal


def _content(message: Mapping[str, Any]) -> dict[str, Any] | None:
    text = message.get("text")
    if isinstance(text, str) and text:
        return {"type": "text", "text": text}
    media = _media(message)
    if media is None:
        return None
    file_id, media_type = media
    content: dict[str, Any] = {
        "type": "media",
        "url": FILE_URL_SCHEME + file_id,
        "media_type": media_type,
    }
    caption = message.get("caption")
    if isinstance(caption, str) and caption:
        content["caption"] = caption
    return content


def _media(message: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(file_id, media type)`` of the message's file: the largest size of a photo."""
    photos = message.get("photo")
    if isinstance(photos, list):
        sizes = [p for p in photos if isinstance(p, dict) and isinstance(p.get("file_id"), str)]
        if sizes:
            largest = max(sizes, key=_area)
            return largest["file_id"], "image/jpeg"
    for field, default_type in MEDIA_FIELDS:
        file = message.get(field)
        if isinstance(file, dict) and isinstance(file.get("file_id"), str) and file["file_id"]:
            mime = file.get("mime_type")
            if isinstance(mime, str) and _MIME.match(mime):
                return file["file_id"], mime
            return file["file_id"], default_type
    return None


def _area(photo: Mapping[str, Any]) -> int:
    width, height = photo.get("width"), photo.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width * height
    return 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["TelegramCallbacks", "inbound_event"]
