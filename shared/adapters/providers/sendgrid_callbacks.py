"""SendGrid's callbacks: the Event Webhook (receipts) and Inbound Parse (inbound email).

Both are POSTed to the channel's one callback URL and told apart by their body:
the Event Webhook sends a JSON array, Inbound Parse ``multipart/form-data``.

Event Webhook — verified as SendGrid's Signed Event Webhook documents: the
``X-Twilio-Email-Event-Webhook-Signature`` header is a base64 DER ECDSA signature
(P-256, SHA-256) over the ``X-Twilio-Email-Event-Webhook-Timestamp`` header's
value followed by the raw body, checked with the channel's
``event_webhook_public_key`` (base64 DER SubjectPublicKeyInfo, as SendGrid shows
it). Without that key, or with a timestamp more than ``MAX_AGE_SECONDS`` away from
now (SendGrid documents no window; replays are harmless anyway, as events dedupe
by ``sg_event_id``), the request is refused.

Inbound Parse — accepted only when the channel can verify it: basic-auth
credentials put in the Parse URL (``inbound_parse_username`` and
``inbound_parse_password``, compared in constant time) and/or the public key of
a signature security policy (``inbound_parse_public_key``; the same headers and
scheme as the Event Webhook). Every check configured must pass; with none
configured, Inbound Parse is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import parseaddr
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.adapters.providers.sendgrid_inbound import (
    bodies,
    decoder,
    email_terminal,
    form_fields,
    inbound_content,
    receiver,
)
from shared.domain.encoding import b64decode_lenient_spaces
from shared.domain.errors import CallbackInvalid, CallbackRejected
from shared.domain.models import Document
from shared.ports import CallbackReply, CallbackRequest, ProviderEvent, receipt

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
MAX_AGE_SECONDS = 600.0

# SendGrid event → (OCM status, opt-out); events not listed produce nothing.
_EVENTS: dict[str, tuple[str | None, str | None]] = {
    "delivered": ("delivered", None),
    "open": ("read", None),
    "bounce": ("failed", "bounce"),
    "dropped": ("failed", None),
    "spamreport": (None, "complaint"),
    "unsubscribe": (None, "unsubscribe"),
    "group_unsubscribe": (None, "unsubscribe"),
}
_FAILURE_CODES = {
    "bounce": "SENDGRID_BOUNCED",
    "blocked": "SENDGRID_BLOCKED",
    "dropped": "SENDGRID_DROPPED",
}


def verify_signature(public_key: str, signature: str, timestamp: str, body: bytes) -> bool:
    """Whether ``signature`` is SendGrid's ECDSA signature of ``timestamp`` + ``body``."""
    try:
        key = _public_key(public_key)
        der = b64decode_lenient_spaces(signature)
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, binascii.Error):
        return False
    return True


def _public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key, as SendGrid shows it (base64 DER) or as PEM."""
    if "BEGIN PUBLIC KEY" in text:
        key = serialization.load_pem_public_key(text.strip().encode("ascii"))
    else:
        der = b64decode_lenient_spaces(text)
        key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 public key")
    return key


def _is_inbound_parse(request: CallbackRequest) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == "multipart/form-data"


class SendGridCallbacks:
    """Verifies and parses SendGrid's callbacks; ``now`` gives Unix seconds."""

    def __init__(
        self, now: Callable[[], float] = time.time, max_age_seconds: float = MAX_AGE_SECONDS
    ) -> None:
        self._now = now
        self._max_age = max_age_seconds

    def verify(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> None:
        if request.method != "POST":
            raise CallbackRejected("SendGrid callbacks are POSTs")
        if _is_inbound_parse(request):
            self._verify_parse(request, credentials)
            return
        key = credentials.get("event_webhook_public_key")
        if not key:
            raise CallbackRejected("The channel has no event_webhook_public_key")
        self._verify_signed(request, key)

    def parse(
        self, request: CallbackRequest, channel: Document, credentials: Mapping[str, str]
    ) -> CallbackReply:
        if _is_inbound_parse(request):
            return CallbackReply(events=(parse_inbound(request),))
        return CallbackReply(events=parse_events(request.body, str(channel["id"])))

    def _verify_signed(self, request: CallbackRequest, public_key: str) -> None:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        if not signature or not (timestamp.isascii() and timestamp.isdigit()):
            raise CallbackRejected("The SendGrid signature or timestamp header is missing")
        if abs(self._now() - int(timestamp)) > self._max_age:
            raise CallbackRejected("The SendGrid signature timestamp is too old or in the future")
        if not verify_signature(public_key, signature, timestamp, request.body):
            raise CallbackRejected("The SendGrid signature does not verify")

    def _verify_parse(self, request: CallbackRequest, credentials: Mapping[str, str]) -> None:
        username = credentials.get("inbound_parse_username") or ""
        password = credentials.get("inbound_parse_password") or ""
        key = credentials.get("inbound_parse_public_key") or ""
        if not (username or password or key):
            raise CallbackRejected("Inbound Parse is not configured for this channel")
        if (username or password) and not _basic_auth_matches(request, username, password):
            raise CallbackRejected("The Inbound Parse credentials do not match")
        if key:
            self._verify_signed(request, key)


def _basic_auth_matches(request: CallbackRequest, username: str, password: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (ValueError, binascii.Error):
        return False
    user, colon, secret = given.partition(b":")
    user_ok = hmac.compare_digest(user, username.encode())
    secret_ok = hmac.compare_digest(secret, password.encode())
    return scheme.lower() == "basic" and bool(colon) and user_ok and secret_ok


# -- Event Webhook -------------------------------------------------------------


def parse_events(body: bytes, channel_id: str) -> tuple[ProviderEvent, ...]:
    """Receipts from an Event Webhook batch; events of mail not sent by this channel
    (no ``ocm_message_id``, or another ``ocm_channel_id``) are skipped."""
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CallbackInvalid("The Event Webhook body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise CallbackInvalid("The Event Webhook body is not an array of events")
    receipts = (_receipt(event, channel_id) for event in events)
    return tuple(r for r in receipts if r is not None)


def _receipt(event: Mapping[str, Any], channel_id: str) -> ProviderEvent | None:
    name = event.get("event")
    mapped = _EVENTS.get(name) if isinstance(name, str) else None
    message_id = event.get("ocm_message_id")
    if mapped is None or not isinstance(message_id, str) or not message_id:
        return None
    if event.get("ocm_channel_id") not in (None, channel_id):
        return None
    event_id = event.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        raise CallbackInvalid(f"A {name} event has no sg_event_id")
    status, opt_out = mapped
    kind = event.get("type") if name == "bounce" else name
    failed = status == "failed"
    if kind == "blocked":
        opt_out = None  # the receiving server refused the sender, not the address
    return receipt(
        event_id,
        status,
        f"bounce:{kind}" if name == "bounce" and kind else str(name),
        message_id=message_id,
        provider_message_id=str(event.get("sg_message_id") or "").split(".")[0] or None,
        error_code=_FAILURE_CODES.get(str(kind), "SENDGRID_BOUNCED") if failed else None,
        error_reason=str(event.get("reason") or name)[:1000] if failed else None,
        opt_out=opt_out or None,
    )


# -- Inbound Parse -------------------------------------------------------------


def parse_inbound(request: CallbackRequest) -> ProviderEvent:
    """The inbound email of one Inbound Parse POST (default or raw format)."""
    fields = form_fields(request.headers.get("content-type", ""), request.body)
    text = decoder(fields)
    mime: Message
    if "email" in fields:  # the raw format: the whole MIME message in one field
        mime = BytesParser(policy=policy.default).parsebytes(fields["email"])
        plain, markup = bodies(mime)
    else:
        mime = HeaderParser(policy=policy.default).parsestr(text("headers"))
        plain, markup = text("text"), text("html")
    name, sender = parseaddr(text("from"))
    if "@" not in sender or len(sender) > 320:
        raise CallbackInvalid("The inbound email has no sender address")
    message_id = str(mime.get("Message-ID") or "").strip().strip("<>")
    if not message_id or len(message_id) > 256:
        message_id = "sha256:" + hashlib.sha256(request.body).hexdigest()
    payload: dict[str, Any] = {
        "event_id": message_id,
        "provider_message_id": message_id,
        "sender": email_terminal(name, sender),
        "receiver": receiver(text("to"), text("envelope")),
        "content": inbound_content(plain, markup),
        "subject": " ".join(text("subject").split())[:998] or None,
    }
    return ProviderEvent(kind="inbound", payload=payload)


__all__ = [
    "MAX_AGE_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SendGridCallbacks",
    "parse_events",
    "parse_inbound",
    "verify_signature",
]
