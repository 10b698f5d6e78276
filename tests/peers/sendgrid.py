"""A SendGrid v3 peer: ``POST /v3/mail/send`` as SendGrid publishes it, and callbacks
signed as SendGrid signs them (Signed Event Webhook, Inbound Parse security policy).

- Auth: ``Authorization: Bearer <api_key>``, else 401 with SendGrid's error body.
- Validation: the documented 400s (personalizations, from, subject, content order,
  attachments, categories, to.name characters), 413 past ``max_body_bytes``, and 403
  for a ``from`` outside ``verified_senders`` (when that is set).
- Success: 202, empty body, ``X-Message-Id``; in sandbox mode 200 and no id.
- ``fail_next``: answers to give instead, in order (status, errors, headers).

Callbacks: ``event(...)`` builds an event as SendGrid would post it for a recorded
send (custom args at the top level, ``sg_message_id`` prefixed by the X-Message-Id),
``event_callback(events)`` the signed request; ``inbound_parse(...)`` a
multipart/form-data Inbound Parse POST, with basic auth and/or a signature.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.peers.base import Peer

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"
UNVERIFIED = (
    "The from address does not match a verified Sender Identity. Mail cannot be sent until "
    "this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/"
    "sender-identity/ to see the Sender Identity requirements"
)


@dataclass
class Failure:
    status: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def _error(message: str, field_: str | None = None, help_: str | None = HELP) -> dict[str, Any]:
    return {"message": message, "field": field_, "help": help_}


def _answer(
    status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"errors": errors}, status=status, headers=headers)


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    """The base64 DER SubjectPublicKeyInfo, as SendGrid shows a verification key."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(
    key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """SendGrid's signature headers: ECDSA P-256 SHA-256 over timestamp + body."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


@dataclass
class SendGridPeer(Peer):
    api_key: str = field(default_factory=lambda: "SG." + secrets.token_urlsafe(16))
    max_body_bytes: int = 30 * 1024 * 1024
    verified_senders: set[str] | None = None
    fail_next: list[Failure] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sandboxed: list[dict[str, Any]] = field(default_factory=list)
    event_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    parse_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v3/mail/send", self._mail_send)

    @property
    def event_public_key(self) -> str:
        return public_key_of(self.event_key)

    @property
    def parse_public_key(self) -> str:
        return public_key_of(self.parse_key)

    # -- mail/send -------------------------------------------------------------

    async def _mail_send(self, request: web.Request) -> web.StreamResponse:
        if self.fail_next:
            failure = self.fail_next.pop(0)
            return _answer(failure.status, failure.errors, failure.headers)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _answer(401, [_error(UNAUTHORIZED, None, None)])
        raw = await request.read()
        if len(raw) > self.max_body_bytes:
            message = "The JSON payload you have included in your request is too large."
            return _answer(413, [_error(message, None, None)])
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _answer(400, [_error("Bad Request", None, None)])
        errors = validate(body) if isinstance(body, dict) else [_error("Bad Request", None, None)]
        if errors:
            return _answer(400, errors)
        sender = body["from"]["email"]
        if self.verified_senders is not None and sender not in self.verified_senders:
            return _answer(403, [_error(UNVERIFIED, "from", None)])
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
            self.sandboxed.append(body)
            return web.Response(status=200)
        message_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.sent.append({"x_message_id": message_id, "body": body})
        return web.Response(status=202, headers={"X-Message-Id": message_id})

    # -- callbacks ---------------------------------------------------------------

    def event(self, sent: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
        """One Event Webhook event for a recorded send, as SendGrid posts it."""
        personalization = sent["body"]["personalizations"][0]
        event: dict[str, Any] = {
            "email": personalization["to"][0]["email"],
            "timestamp": int(time.time()),
            "smtp-id": f"<{sent['x_message_id']}@geopod-ismtpd-1>",
            "event": name,
            "category": sent["body"].get("categories", []),
            "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode(),
            "sg_message_id": f"{sent['x_message_id']}.filterdrecv-5645d9c87f-6r2ch-1-0.0",
            **personalization.get("custom_args", {}),
        }
        event.update(extra)
        return event

    def event_callback(
        self, events: list[dict[str, Any]], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A signed Event Webhook POST: the body and its headers."""
        body = orjson.dumps(events) + b"\r\n"
        headers = {"Content-Type": "application/json", **sign(self.event_key, body, timestamp)}
        return body, headers

    def inbound_parse(
        self,
        *,
        sender: str = "Alice Example <alice@example.org>",
        to: str = "support@parse.acme.example",
        subject: str = "Help please",
        text: str = "My order has not arrived.",
        html: str | None = None,
        message_id: str | None = "<CAF=abc123@mail.example.org>",
        raw: bytes | None = None,
        basic_auth: tuple[str, str] | None = None,
        signed: bool = False,
    ) -> tuple[bytes, dict[str, str]]:
        """An Inbound Parse POST (default format, or raw with ``raw``)."""
        headers_field = f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        if message_id:
            headers_field += f"Message-ID: {message_id}\n"
        fields: list[tuple[str, str | bytes]] = [
            ("headers", headers_field),
            ("dkim", "{@example.org : pass}"),
            ("to", to),
            ("from", sender),
            ("sender_ip", "192.0.2.10"),
            ("envelope", orjson.dumps({"to": [to], "from": sender}).decode()),
            ("subject", subject),
            (
                "charsets",
                '{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}',
            ),
            ("SPF", "pass"),
        ]
        if raw is not None:
            fields = [(k, v) for k, v in fields if k not in ("headers", "text", "html")]
            fields.append(("email", raw))
        else:
            fields += [("text", text), ("attachments", "1")]
            if html is not None:
                fields.append(("html", html))
        boundary = "xYzZY" + secrets.token_hex(8)
        body = _multipart(boundary, fields, raw is None)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if signed:
            headers.update(sign(self.parse_key, body))
        return body, headers


def _multipart(boundary: str, fields: list[tuple[str, str | bytes]], attach: bool) -> bytes:
    parts = []
    for name, value in fields:
        data = value.encode() if isinstance(value, str) else value
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    if attach:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="attachment1"; '
            f'filename="note.txt"\r\nContent-Type: text/plain\r\n\r\n'.encode()
            + b"an attached file\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# -- what SendGrid checks --------------------------------------------------------

NO_PERSONALIZATIONS = (
    "The personalizations field is required and must have at least one personalization."
)
NO_TO = (
    "The to array is required for all personalization objects, and must have at least one "
    "email object with a valid email address."
)
NO_FROM = (
    "The from object must be provided for every email send. It is an object that requires "
    "the email parameter, but may also contain a name parameter."
)
NO_SUBJECT = (
    "The subject is required. You can get around this requirement if you use a template with "
    "a subject defined or if every personalization has a subject defined."
)
NO_CONTENT = (
    "Unless a valid template_id is provided, the content parameter is required. There must be "
    "at least one defined content block. We typically suggest both text/plain and text/html "
    "blocks are included, but only one block is required."
)


def validate(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The documented mail/send 400s that OCM's requests could meet."""
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return [_error(NO_PERSONALIZATIONS, "personalizations")]
    errors = [e for i, p in enumerate(personalizations) for e in _recipient_errors(i, p)]
    sender = body.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email") or ""):
        errors.append(_error(NO_FROM, "from.email"))
    templated = bool(body.get("template_id"))
    subjects = all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    if not (templated or body.get("subject") or subjects):
        errors.append(_error(NO_SUBJECT, "subject"))
    errors += _content_errors(body.get("content"), templated)
    errors += _attachment_errors(body.get("attachments") or [])
    categories = body.get("categories") or []
    if len(categories) > 10 or len(set(categories)) != len(categories):
        errors.append(_error("At most 10 unique categories.", "categories"))
    return errors


def _recipient_errors(i: int, personalization: Any) -> list[dict[str, Any]]:
    tos = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(tos, list) or not tos:
        return [_error(NO_TO, f"personalizations.{i}.to")]
    errors = []
    for j, to in enumerate(tos):
        where = f"personalizations.{i}.to.{j}"
        if "@" not in str((to or {}).get("email") or ""):
            errors.append(_error("Does not contain a valid address.", f"{where}.email"))
        if any(c in str((to or {}).get("name") or "") for c in ";,"):
            message = "The to.name field cannot include the ; or , characters."
            errors.append(_error(message, f"{where}.name"))
    return errors


def _content_errors(content: Any, templated: bool) -> list[dict[str, Any]]:
    if not content:
        return [] if templated else [_error(NO_CONTENT, "content")]
    errors = []
    types = [str((c or {}).get("type")) for c in content]
    if "text/plain" in types and types.index("text/plain") != 0:
        message = "If present, text/plain and text/html may only be provided in this order."
        errors.append(_error(message, "content"))
    for i, c in enumerate(content):
        if not str((c or {}).get("value") or ""):
            message = "The content value must be a string at least one character in length."
            errors.append(_error(message, f"content.{i}.value"))
    return errors


def _attachment_errors(attachments: list[Any]) -> list[dict[str, Any]]:
    errors = []
    for i, a in enumerate(attachments):
        if not (a or {}).get("filename"):
            message = "The attachment filename parameter is required."
            errors.append(_error(message, f"attachments.{i}.filename"))
        try:
            ok = bool((a or {}).get("content")) and bool(
                base64.b64decode(a["content"], validate=True)
            )
        except (ValueError, binascii.Error):
            ok = False
        if not ok:
            message = "The attachment content must be base64 encoded."
            errors.append(_error(message, f"attachments.{i}.content"))
    return errors
