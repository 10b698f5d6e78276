"""Twilio's callbacks: message status callbacks (receipts) and incoming messages.

Twilio signs every request with ``X-Twilio-Signature``: the base64 HMAC-SHA1, keyed
with the account's Auth Token, of the full URL it called (scheme to query string)
followed by each POST parameter's name and value, sorted by name (case-sensitive),
with no separators; a GET has its parameters in the URL alone. Twilio may sign the
URL with or without its port, so, as its helper libraries do, both forms are tried.
Requests signed under a Webhooks Rule's shared key (``X-Twilio-Webhooks-Signature-
Settings``) are not supported: they fail verification.

A status callback (``MessageStatus``) becomes a receipt with ``event_id``
``{MessageSid}:{MessageStatus}``: sent, delivered and read as they are, undelivered,
failed and canceled as failed with ``TWILIO_{ErrorCode}``; queued, sending, accepted
and scheduled record nothing. An incoming message (``SmsStatus=received``) becomes an
inbound message, answered with empty TwiML so Twilio sends no reply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shared.domain.addresses import wa_id_to_e164
from shared.domain.errors import CallbackInvalid, CallbackRejected
from shared.domain.models import Document
from shared.ports import CallbackReply, CallbackRequest, ProviderEvent, receipt

SIGNATURE_HEADER = "x-twilio-signature"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10

_STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
_DEFAULT_PORTS = {"https": 443, "http": 80}

ERROR_TEXTS = {
    "21610": "The recipient has unsubscribed (replied STOP)",
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "30034": "Message from an unregistered US A2P 10DLC number",
    "63016": "WhatsApp: outside the 24-hour window, only a template may be sent",
}
"""Why a message failed, for the ErrorCodes a status callback carries without a text."""


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature of a request to ``url`` with POST ``params``."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_forms(url: str) -> tuple[str, ...]:
    """The URL as called, and the same with its port dropped or the default one added."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return (url,)
    if port is not None:
        netloc = parts.netloc.rsplit(":", 1)[0]
    elif parts.scheme in _DEFAULT_PORTS:
        netloc = f"{parts.netloc}:{_DEFAULT_PORTS[parts.scheme]}"
    else:
        return (url,)
    return (url, url.replace(parts.netloc, netloc, 1))


def _form(request: CallbackRequest) -> list[tuple[str, str]]:
    """The POST parameters (none for a GET, whose parameters are in the URL)."""
    if request.method == "GET":
        return []
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackRejected("The callback body is not form-encoded UTF-8") from None
    return parse_qsl(text, keep_blank_values=True)


class TwilioCallbacks:
    """Verifies X-Twilio-Signature, then reads status callbacks and incoming messages."""

    def verify(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> None:
        token = credentials.get("auth_token", "")
        given = request.headers.get(SIGNATURE_HEADER, "").encode()
        if not token or not given:
            raise CallbackRejected("X-Twilio-Signature (or the channel's auth_token) is missing")
        params = _form(request)
        if not any(
            hmac.compare_digest(signature(token, url, params).encode(), given)
            for url in url_forms(request.url)
        ):
            raise CallbackRejected("X-Twilio-Signature does not match the request")

    def parse(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> CallbackReply:
        params = dict(request.query if request.method == "GET" else _form(request))
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            raise CallbackInvalid("A Twilio message callback has MessageSid and MessageStatus")
        if status == "received":
            return _inbound(sid, params)
        return _receipt(sid, status, params)


def _receipt(sid: str, status: str, params: Mapping[str, str]) -> CallbackReply:
    ocm_status = _STATUSES.get(status)
    if ocm_status is None:  # queued, sending, accepted, scheduled…: nothing to record
        return CallbackReply()
    error_code = error_reason = opt_out = None
    if ocm_status == "failed":
        code = params.get("ErrorCode", "")
        error_code = f"TWILIO_{code}" if code.isdigit() else f"TWILIO_{status.upper()}"
        error_reason = (
            params.get("ErrorMessage") or ERROR_TEXTS.get(code) or f"Twilio reported {status}"
        )
        opt_out = "unsubscribe" if code == "21610" else None
    event = receipt(
        f"{sid}:{status}",
        ocm_status,
        status,
        provider_message_id=sid,
        error_code=error_code,
        error_reason=error_reason,
        opt_out=opt_out,
    )
    return CallbackReply(events=(event,))


def _inbound(sid: str, params: Mapping[str, str]) -> CallbackReply:
    if not params.get("From") or not params.get("To"):
        raise CallbackInvalid("An incoming Twilio message has From and To")
    content = _content(params)
    events: tuple[ProviderEvent, ...] = ()
    if content is not None:  # else neither text nor media (a WhatsApp location, say)
        sender = {"type": "phone", "address": _phone(params["From"])}
        if params.get("ProfileName"):  # WhatsApp: the sender's profile name
            sender["display_name"] = params["ProfileName"][:256]
        payload = {
            "event_id": sid,
            "provider_message_id": sid,
            "sender": sender,
            "receiver": {"type": "phone", "address": _phone(params["To"])},
            "content": content,
        }
        events = (ProviderEvent(kind="inbound", payload=payload),)
    return CallbackReply(events=events, body=EMPTY_TWIML, media_type="text/xml")


def _phone(address: str) -> str:
    """An SMS number as given; a WhatsApp one (``whatsapp:+…``) as the number it is."""
    if address.startswith("whatsapp:+"):
        return wa_id_to_e164(address.removeprefix("whatsapp:+"))
    return address.removeprefix("whatsapp:")


def _content(params: Mapping[str, str]) -> dict[str, Any] | None:
    """Text, one media (its caption the text), or text with the media as attachments."""
    text = params.get("Body", "")
    media = _media(params)
    if not media:
        return {"type": "text", "text": text} if text else None
    if len(media) == 1:
        url, media_type = media[0]
        one: dict[str, Any] = {"type": "media", "url": url, "media_type": media_type}
        if text:
            one["caption"] = text
        return one
    attachments = [
        {"filename": url.rstrip("/").rsplit("/", 1)[-1], "content_type": kind, "url": url}
        for url, kind in media
    ]
    return {"type": "text", "text": text, "attachments": attachments}


def _media(params: Mapping[str, str]) -> list[tuple[str, str]]:
    count = params.get("NumMedia") or "0"
    if not count.isdigit() or int(count) > MAX_MEDIA:
        raise CallbackInvalid(f"NumMedia must be 0 to {MAX_MEDIA}")
    media = []
    for i in range(int(count)):
        url = params.get(f"MediaUrl{i}")
        if not url:
            raise CallbackInvalid(f"MediaUrl{i} is missing")
        media.append((url, params.get(f"MediaContentType{i}") or "application/octet-stream"))
    return media


__all__ = ["EMPTY_TWIML", "ERROR_TEXTS", "TwilioCallbacks", "signature", "url_forms"]
