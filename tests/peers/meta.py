"""A WhatsApp Cloud API peer: ``POST /{version}/{phone_number_id}/messages`` as Meta
documents it, and webhook requests signed as Meta signs them.

Auth is ``Authorization: Bearer <access_token>``; a wrong or missing token answers
401 with Graph error 190. A request Meta would refuse as malformed answers 400 with
error 100 (Invalid parameter), an unknown phone number id 400 with error 100 and
subcode 33. Tests choose other documented errors with ``fail_next`` (the next calls,
in order) or ``fail_for`` (by the ``to`` number), as Meta error codes; the body is
Meta's error body for that code, with its HTTP status. ``answer_next`` gives raw
answers that are not Graph errors (an outage page, a front end's 429).

Webhook helpers build Meta's notification bodies (JSON with non-ASCII escaped, as
Meta sends them) and sign them: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``
of the raw body, keyed by the app secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.peers.base import Peer

# code: (HTTP status, title, details), from Meta's Cloud API error code reference
ERRORS: dict[int, tuple[int, str, str]] = {
    1: (400, "API Unknown", "Invalid request or possible server error."),
    2: (503, "API Service", "Temporary due to downtime or due to being overloaded."),
    4: (400, "API Too Many Calls", "The app has reached its API call rate limit."),
    10: (403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: (400, "Invalid parameter", "The request included an invalid parameter."),
    190: (401, "Access token has expired", "Your access token has expired."),
    200: (403, "API Permission", "Permission is either not granted or has been removed."),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (400, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131016: (500, "Service unavailable", "A service is temporarily unavailable."),
    131026: (400, "Message Undeliverable", "Unable to deliver message."),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
    ),
    131048: (400, "Spam rate limit hit", "Too many previous messages were blocked or flagged."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone "
        "number in a short period of time.",
    ),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values does not match the template's.",
    ),
    132001: (404, "Template does not exist", "The template does not exist in that language."),
}
MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "template")


def error_answer(
    code: int, *, details: str | None = None, subcode: int | None = None
) -> web.Response:
    """Meta's error body for a documented code, with its HTTP status."""
    status, title, default_details = ERRORS.get(code, (400, "Unknown error", ""))
    error: dict[str, Any] = {
        "message": f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or default_details},
        "fbtrace_id": base64.b64encode(os.urandom(9)).decode(),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status)


@dataclass
class MetaPeer(Peer):
    access_token: str = "EAAtest-access-token"
    app_secret: str = "test-app-secret"
    verify_token: str = "test-verify-token"
    phone_number_id: str = "106540352242922"
    display_phone_number: str = "14155550123"
    waba_id: str = "102290129340398"
    fail_next: list[int] = field(default_factory=list)
    fail_for: dict[str, int] = field(default_factory=dict)
    answer_next: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    """Raw answers (status, headers, body) for the next calls: a front end's 502 or 429."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Accepted message bodies, each with the ``id`` (wamid) it was given."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", self._messages)

    async def _messages(self, request: web.Request) -> web.Response:
        if self.answer_next:
            status, headers, raw = self.answer_next.pop(0)
            return web.Response(status=status, headers=headers, body=raw)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return error_answer(190, details="Invalid OAuth access token - Cannot parse token")
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return error_answer(
                100,
                subcode=33,
                details=f"Object with ID '{request.match_info['phone_number_id']}' does not "
                "exist, cannot be loaded due to missing permissions, or does not support "
                "this operation",
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return error_answer(100, details="The request body is not JSON")
        problem = _problem(body)
        if problem:
            return error_answer(100, details=problem)
        if self.fail_next:
            return error_answer(self.fail_next.pop(0))
        if body["to"] in self.fail_for:
            return error_answer(self.fail_for[body["to"]])
        wamid = "wamid." + base64.b64encode(os.urandom(30)).decode()
        self.sent.append({**body, "id": wamid})
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": re.sub(r"\D", "", body["to"])}],
                "messages": [{"id": wamid}],
            }
        )

    # -- webhooks --------------------------------------------------------------

    def notification(self, value: dict[str, Any]) -> dict[str, Any]:
        """A ``messages`` notification for this peer's business number."""
        metadata = {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": metadata,
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def status(
        self, wamid: str, status: str, *, to: str = "16505551234", error: int | None = None
    ) -> dict[str, Any]:
        """A status notification; ``error`` makes a failed status carry that code."""
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": to.lstrip("+"),
        }
        if error is not None:
            _, title, details = ERRORS[error]
            item["errors"] = [
                {
                    "code": error,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                }
            ]
        return self.notification({"statuses": [item]})

    def inbound(
        self,
        message: dict[str, Any],
        *,
        sender: str = "16315551181",
        name: str = "Kerry Fisher",
        wamid: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """An inbound message notification (sent now unless ``timestamp``, Unix seconds);
        ``message`` is its typed part, e.g. ``{"type": "text", "text": {"body": "hi"}}``."""
        item = {
            "from": sender,
            "id": wamid or "wamid." + base64.b64encode(os.urandom(30)).decode(),
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
            **message,
        }
        contacts = [{"profile": {"name": name}, "wa_id": sender}]
        return self.notification({"contacts": contacts, "messages": [item]})

    def signed(
        self, payload: dict[str, Any], *, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body as Meta sends it and its headers, signed with the app secret."""
        body = json.dumps(payload, ensure_ascii=True).encode()
        return body, {"Content-Type": "application/json", **self.signature(body, secret)}

    def signature(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        key = (secret or self.app_secret).encode()
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}

    def handshake(
        self, *, token: str | None = None, challenge: str = "1158201444"
    ) -> dict[str, str]:
        """The query of Meta's GET that verifies a callback URL."""
        return {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": self.verify_token if token is None else token,
        }


def _problem(body: Any) -> str | None:
    """What Meta would call an invalid parameter in a send request, if anything."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if body.get("recipient_type", "individual") != "individual":
        return "recipient_type must be individual"
    to = body.get("to")
    if not isinstance(to, str) or not re.fullmatch(r"\+?\d{6,15}", to):
        return "to is not a phone number"
    kind = body.get("type", "text")
    part = body.get(kind)
    if kind not in MESSAGE_TYPES or not isinstance(part, dict):
        return f"type {kind!r} needs its {kind} object"
    if kind == "text":
        text = part.get("body")
        return None if isinstance(text, str) and 0 < len(text) <= 4096 else "text.body"
    if kind == "template":
        language = part.get("language")
        if not part.get("name") or not isinstance(language, dict) or not language.get("code"):
            return "template needs name and language.code"
        return None
    if not (part.get("link") or part.get("id")):
        return f"{kind} needs link or id"
    if kind == "audio" and "caption" in part:
        return "audio takes no caption"
    return None
