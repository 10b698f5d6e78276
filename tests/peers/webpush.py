"""A Web Push push service (RFC 8030) that checks VAPID (RFC 8292).

``subscribe(vapid_public_key)`` makes a subscription restricted to that
application server key, as a browser's ``pushManager.subscribe`` with an
``applicationServerKey`` does, and returns its endpoint. A push message to it
needs ``Authorization: vapid t=<JWT>, k=<key>`` (401 without), with ``k`` the
subscription's key, the JWT signed by it (ES256), ``aud`` this service's origin,
``exp`` within 24 hours and a ``mailto:``/``https:`` ``sub`` (403 otherwise), a
``TTL``, ``Content-Encoding: aes128gcm`` and at most 4096 octets (413). Accepted
messages are kept (a ``Topic`` replaces an undelivered one with the same topic)
and answered 201 with a ``Location``. Unknown subscriptions answer 404,
unsubscribed ones 410; ``fail_next`` holds statuses for the next pushes.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.peers.base import Peer

SUBJECT = "mailto:push@acme.example"

MAX_BODY = 4096
URGENCIES = ("very-low", "low", "normal", "high")
_VAPID = re.compile(r"^vapid t=(?P<t>[^,\s]+),\s*k=(?P<k>[A-Za-z0-9_-]+)$")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass
class PushMessage:
    subscription: str
    ttl: int
    urgency: str
    topic: str | None
    body: bytes
    vapid: dict[str, Any]
    location: str


@dataclass
class WebPushPeer(Peer):
    keys: dict[str, bytes] = field(default_factory=dict)
    """Subscription id → the application server key it is restricted to."""
    gone: set[str] = field(default_factory=set)
    messages: list[PushMessage] = field(default_factory=list)
    """The push messages accepted and not replaced, in order."""
    fail_next: list[int] = field(default_factory=list)
    retry_after: str = "7"
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def subscribe(self, vapid_public_key: bytes) -> str:
        """A new subscription's endpoint, restricted to that (uncompressed) key."""
        sub_id = secrets.token_urlsafe(16)
        self.keys[sub_id] = vapid_public_key
        return f"{self.url}/push/{sub_id}"

    def unsubscribe(self, endpoint: str) -> None:
        self.gone.add(endpoint.rsplit("/", 1)[1])

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/push/{sub}", self._push)

    async def _push(self, request: web.Request) -> web.Response:
        sub = request.match_info["sub"]
        if sub in self.gone:
            return web.Response(status=410, text="push subscription has unsubscribed or expired")
        if sub not in self.keys:
            return web.Response(status=404, text="push subscription not found")
        if self.fail_next:
            status = self.fail_next.pop(0)
            headers = {"Retry-After": self.retry_after} if status in (429, 503) else None
            return web.Response(status=status, headers=headers, text=f"failing with {status}")
        match = _VAPID.match(request.headers.get("Authorization", ""))
        if match is None:
            return web.Response(status=401, text="missing vapid authorization")
        claims = self._vapid_claims(match["t"], match["k"], self.keys[sub])
        if claims is None:
            return web.json_response({"reason": "BadJwtToken"}, status=403)
        problem = _problem(request.headers)
        if problem:
            return web.Response(status=400, text=problem)
        body = await request.read()
        if len(body) > MAX_BODY:
            return web.Response(status=413, text="payload too large")
        return self._accept(sub, request.headers, body, claims)

    def _vapid_claims(self, token: str, key: str, bound: bytes) -> dict[str, Any] | None:
        """The JWT's claims if it is signed by ``key``, the subscription's, and valid."""
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            if not secrets.compare_digest(raw, bound):
                return None
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            claims: dict[str, Any] = jwt.decode(
                token,
                public_key,
                algorithms=["ES256"],
                audience=self.url,
                options={"require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.PyJWTError):
            return None
        if claims["exp"] > time.time() + 24 * 3600:
            return None
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return None
        return claims

    def _accept(self, sub: str, headers: Any, body: bytes, claims: dict[str, Any]) -> web.Response:
        topic = headers.get("Topic")
        if topic:
            self.messages = [m for m in self.messages if (m.subscription, m.topic) != (sub, topic)]
        location = f"{self.url}/message/{next(self._ids)}"
        self.messages.append(
            PushMessage(
                subscription=sub,
                ttl=int(headers["TTL"]),
                urgency=headers.get("Urgency", "normal"),
                topic=topic,
                body=body,
                vapid=claims,
                location=location,
            )
        )
        return web.Response(status=201, headers={"Location": location})


def _problem(headers: Any) -> str | None:
    """What is wrong with a push request's headers (RFC 8030, RFC 8291), if anything."""
    if not headers.get("TTL", "").isdigit():
        return "TTL header is missing or not a number of seconds"
    if headers.get("Urgency", "normal") not in URGENCIES:
        return "Urgency is not one of " + ", ".join(URGENCIES)
    if headers.get("Topic") is not None and not _TOPIC.match(headers["Topic"]):
        return "Topic must be 1-32 base64url characters"
    if headers.get("Content-Encoding") != "aes128gcm":
        return "Content-Encoding must be aes128gcm"
    return None


# -- the application server's keys, and the browser's side -----------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


@dataclass
class Vapid:
    """The application server's VAPID key pair, as `web-push generate-vapid-keys` gives it."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> Vapid:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def private(self) -> str:
        return b64url(self.key.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def public(self) -> bytes:
        return public_point(self.key)

    def credentials(self, subject: str = SUBJECT) -> dict[str, str]:
        return {"vapid_private_key": self.private, "vapid_subject": subject}


@dataclass
class Browser:
    """A browser's push subscription: what it gives the application server, and the
    private key and auth secret it keeps to decrypt what arrives."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def subscribe(cls, peer: WebPushPeer, vapid: Vapid) -> Browser:
        endpoint = peer.subscribe(vapid.public)  # pushManager.subscribe({applicationServerKey})
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def subscription(self) -> str:
        """PushSubscription.toJSON(), as the page posts it to the application server."""
        keys = {"p256dh": b64url(public_point(self.key)), "auth": b64url(self.auth)}
        return json.dumps({"endpoint": self.endpoint, "expirationTime": None, "keys": keys})

    def decrypt(self, body: bytes) -> Any:
        plaintext = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plaintext)
