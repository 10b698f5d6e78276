"""WhatsApp Cloud API webhooks: the verification handshake, receipts and inbound messages.

Meta calls the one callback URL two ways:

- ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`` when the URL is
  set up: the token must equal the channel's ``verify_token`` credential, and the
  answer is the challenge as text/plain;
- ``POST`` with a JSON body signed in ``X-Hub-Signature-256: sha256=<hex>``, the
  lower-case hex HMAC-SHA256 of the raw body keyed by the app secret. Meta
  computes it over the body exactly as sent (non-ASCII escaped as ``\\uXXXX``),
  so the raw bytes are what is verified, before any parsing.

A POST body is ``{"object": "whatsapp_business_account", "entry": [{"changes":
[{"field": "messages", "value": {...}}]}]}``; only ``messages`` changes for the
channel's own ``phone_number_id`` count (one app's webhook may carry several
numbers). ``value.statuses`` become receipts (``event_id`` = wamid + ":" +
status) and ``value.messages`` inbound messages (``event_id`` = wamid), so a
webhook Meta retries changes nothing. Inbound media arrive as a media id, which
only the Graph API (with the access token) turns into bytes: the content's URL
is ``meta-media:<media id>``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.adapters.providers.meta_errors import describe, error_code
from shared.domain.addresses import wa_id_to_e164
from shared.domain.errors import CallbackInvalid, CallbackRejected
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import CallbackReply, CallbackRequest, ProviderEvent, receipt

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
RECEIPT_STATUSES = frozenset({"sent", "delivered", "read", "failed"})
MEDIA_TYPES = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}
MAX_CHALLENGE = 1024


def signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class MetaCallbacks:
    """Verifies and reads the webhooks of a whatsapp channel."""

    def verify(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> None:
        if request.method == "GET":
            token = credentials.get("verify_token") or ""
            given = request.query_value("hub.verify_token")
            mode = request.query_value("hub.mode")
            if mode != "subscribe" or not token or given is None or not _same(given, token):
                raise CallbackRejected("The verify token does not match")
            return
        secret = credentials.get("app_secret") or ""
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not secret or not given.startswith("sha256="):
            raise CallbackRejected("X-Hub-Signature-256 is missing")
        if not _same(given, signature(secret, request.body)):
            raise CallbackRejected("X-Hub-Signature-256 does not match the body")

    def parse(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> CallbackReply:
        if request.method == "GET":
            challenge = request.query_value("hub.challenge")
            if not challenge or len(challenge) > MAX_CHALLENGE:
                raise CallbackInvalid("hub.challenge is missing")
            return CallbackReply(body=challenge.encode(), media_type="text/plain")
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise CallbackInvalid("The webhook body is not JSON") from None
        if not isinstance(data, dict):
            raise CallbackInvalid("The webhook body is not a JSON object")
        if data.get("object") != "whatsapp_business_account":
            log.info("webhook for object %r ignored", data.get("object"))
            return CallbackReply()
        phone_number_id = str((channel.get("settings") or {}).get("phone_number_id", ""))
        try:
            events = tuple(_events(data, phone_number_id))
        except (LookupError, TypeError, ValueError, AttributeError):
            raise CallbackInvalid("The webhook body is not a WhatsApp notification") from None
        return CallbackReply(events=events)


def _events(data: dict[str, Any], phone_number_id: str) -> Iterator[ProviderEvent]:
    for entry in data["entry"]:
        for change in entry.get("changes") or ():
            if change.get("field") != "messages":
                continue
            value = change["value"]
            metadata = value.get("metadata") or {}
            if str(metadata.get("phone_number_id")) != phone_number_id:
                log.info("webhook for another phone number ignored")
                continue
            for status in value.get("statuses") or ():
                receipt = _receipt(status)
                if receipt is not None:
                    yield receipt
            receiver = _business_number(metadata)
            names = _profile_names(value.get("contacts") or ())
            for message in value.get("messages") or ():
                inbound = _inbound(message, receiver, names)
                if inbound is not None:
                    yield inbound


def _receipt(status: Mapping[str, Any]) -> ProviderEvent | None:
    state = status["status"]
    if state not in RECEIPT_STATUSES:
        return None
    wamid = _text(status["id"])
    code = reason = None
    if state == "failed":
        error = (status.get("errors") or [{}])[0]
        number = error.get("code")
        code = error_code(number if isinstance(number, int) else None)
        reason = describe(error)
    return receipt(
        f"{wamid}:{state}",
        state,
        state,
        provider_message_id=wamid,
        error_code=code,
        error_reason=reason,
    )


def _inbound(
    message: Mapping[str, Any], receiver: dict[str, str] | None, names: Mapping[str, str]
) -> ProviderEvent | None:
    wamid = _text(message["id"])
    content = _content(message)
    if content is None:
        log.info("inbound WhatsApp message of type %r ignored", message.get("type"))
        return None
    sender_id = _text(message["from"])
    if not sender_id.isdigit():
        raise ValueError("from is not a WhatsApp id")
    sender = {"type": "phone", "address": wa_id_to_e164(sender_id)}
    if names.get(sender_id):
        sender["display_name"] = names[sender_id][:256]
    payload: dict[str, Any] = {
        "event_id": wamid,
        "provider_message_id": wamid,
        "sender": sender,
        "receiver": receiver,
        "content": content,
    }
    received_at = _time(message.get("timestamp"))
    if received_at:
        payload["received_at"] = received_at
    return ProviderEvent(kind="inbound", payload=payload)


def _content(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """An OCM content dict; None for kinds OCM does not carry (location, reaction, …)."""
    kind = message.get("type")
    text: Any = None
    if kind == "text":
        text = message["text"]["body"]
    elif kind == "button":
        text = message["button"].get("text") or message["button"].get("payload")
    elif kind == "interactive":
        reply = message["interactive"]
        text = (reply.get("button_reply") or reply.get("list_reply") or {}).get("title")
    elif kind in MEDIA_TYPES:
        media = message[kind]
        content = {
            "type": "media",
            "url": f"meta-media:{_text(media['id'])}",
            "media_type": media.get("mime_type") or MEDIA_TYPES[kind],
        }
        if media.get("caption"):
            content["caption"] = str(media["caption"])
        return content
    return {"type": "text", "text": text} if isinstance(text, str) and text else None


def _business_number(metadata: Mapping[str, Any]) -> dict[str, str] | None:
    digits = "".join(c for c in str(metadata.get("display_phone_number") or "") if c.isdigit())
    return {"type": "phone", "address": "+" + digits} if digits else None


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in contacts:
        name = (contact.get("profile") or {}).get("name")
        if isinstance(name, str) and name and contact.get("wa_id"):
            names[str(contact["wa_id"])] = name
    return names


def _time(timestamp: Any) -> str | None:
    """RFC 3339 from Meta's Unix seconds (a string), or None if absent or odd."""
    try:
        return to_utc_text(datetime.fromtimestamp(int(timestamp), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


__all__ = ["MetaCallbacks", "signature"]
