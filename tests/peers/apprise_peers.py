"""Peers for the apprise provider: the endpoints its loopback-reachable URLs talk to.

- ``WebhookPeer`` is a receiver of Apprise's ``json://`` or ``form://`` notifications:
  Apprise POSTs ``{"version": "1.0", "title", "message", "attachments": [], "type"}``
  as JSON, or the same fields but ``attachments`` form-encoded, to the URL's path,
  with HTTP Basic auth when the URL has a user. The peer checks that shape and the
  auth (401 on a mismatch), and answers 200.
- ``NtfyPeer`` is an ntfy server (https://docs.ntfy.sh/publish/): a JSON message
  POSTed to the root (``{"topic", "message", "title", …}``, what Apprise sends) or a
  body POSTed/PUT to ``/<topic>`` with ``X-Title``; auth by Basic or ``Bearer tk_…``
  when ``users``/``tokens`` are set. It answers the published message
  (``{"id", "time", "expires", "event": "message", "topic", …}``) or ntfy's error
  body ``{"code": 40101, "http": 401, "error": "unauthorized", "link": …}``.

Both answer ``fail_next`` statuses first, in order (one per request), and keep
what they accepted in ``received``; ``WebhookPeer.redirect_next`` answers one 302.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from tests.peers.base import Peer

NOTIFY_TYPES = frozenset({"info", "success", "warning", "failure"})


def _basic(request: web.Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return user, password


@dataclass
class WebhookPeer(Peer):
    """An endpoint for ``json://`` (``kind="json"``) or ``form://`` notifications."""

    kind: Literal["json", "form"] = "json"
    auth: tuple[str, str] | None = None
    fail_next: list[int] = field(default_factory=list)
    redirect_next: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/{path:.*}", self._notify)

    def address(self, path: str = "hook", *, credentials: str = "") -> str:
        """The Apprise URL of this endpoint (``credentials``: ``user:password``)."""
        at = f"{credentials}@" if credentials else ""
        return f"{self.kind}://{at}{self.host}:{self.port}/{path}"

    async def _notify(self, request: web.Request) -> web.Response:
        if self.redirect_next is not None:
            location, self.redirect_next = self.redirect_next, None
            raise web.HTTPFound(location)
        if self.auth is not None and _basic(request) != self.auth:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="hook"'})
        if self.fail_next:
            return web.Response(status=self.fail_next.pop(0), text="failed as asked")
        payload = await self._payload(request)
        if payload is None:
            return web.Response(status=400, text="not an Apprise notification")
        self.received.append(payload)
        return web.json_response({})

    async def _payload(self, request: web.Request) -> dict[str, Any] | None:
        if self.kind == "json":
            if request.content_type != "application/json":
                return None
            try:
                payload: Any = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                return None
            if not isinstance(payload, dict) or not isinstance(payload.get("attachments"), list):
                return None
        else:
            if request.content_type != "application/x-www-form-urlencoded":
                return None
            payload = dict(await request.post())
        ok = (
            payload.get("version") == "1.0"
            and isinstance(payload.get("title"), str)
            and isinstance(payload.get("message"), str)
            and payload.get("type") in NOTIFY_TYPES
        )
        return payload if ok else None


_NTFY_ERRORS: dict[int, tuple[int, str, str]] = {
    400: (40024, "invalid request: request body must be valid JSON", ""),
    401: (40101, "unauthorized", "https://ntfy.sh/docs/publish/#authentication"),
    403: (40301, "forbidden", "https://ntfy.sh/docs/publish/#authentication"),
    429: (
        42901,
        "limit reached: too many requests, please be nice",
        "https://ntfy.sh/docs/publish/#limitations",
    ),
    500: (50001, "internal server error", ""),
}
_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


@dataclass
class NtfyPeer(Peer):
    """An ntfy server's publish API; ``users``/``tokens`` turn access control on."""

    users: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    fail_next: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._publish_json)
        app.router.add_route("POST", "/{topic}", self._publish_body)
        app.router.add_route("PUT", "/{topic}", self._publish_body)

    def address(self, topic: str, *, credentials: str = "") -> str:
        """The Apprise URL of a topic here (``credentials``: ``user:pass`` or ``tk_…``)."""
        at = f"{credentials}@" if credentials else ""
        return f"ntfy://{at}{self.host}:{self.port}/{topic}"

    async def _publish_json(self, request: web.Request) -> web.Response:
        try:
            body: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self._error(400)
        if not isinstance(body, dict):
            return self._error(400)
        return self._publish(request, body)

    async def _publish_body(self, request: web.Request) -> web.Response:
        message = {
            "topic": request.match_info["topic"],
            "message": (await request.read()).decode(errors="replace"),
            "title": request.headers.get("X-Title") or request.headers.get("Title"),
        }
        return self._publish(request, {k: v for k, v in message.items() if v})

    def _publish(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        if not self._allowed(request):
            return self._error(401)
        if self.fail_next:
            return self._error(self.fail_next.pop(0))
        topic = body.get("topic")
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            return web.json_response(
                {"code": 40009, "http": 400, "error": "invalid request: topic invalid"},
                status=400,
            )
        now = int(time.time())
        published = {
            "id": secrets.token_urlsafe(9)[:12],
            "time": now,
            "expires": now + 43200,
            "event": "message",
            "topic": topic,
            "message": body.get("message") or "triggered",
        }
        if body.get("title"):
            published["title"] = body["title"]
        self.received.append({**body, "authorization": request.headers.get("Authorization")})
        return web.json_response(published)

    def _allowed(self, request: web.Request) -> bool:
        if not self.users and not self.tokens:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header.removeprefix("Bearer ") in self.tokens
        basic = _basic(request)
        return basic is not None and self.users.get(basic[0]) == basic[1]

    @staticmethod
    def _error(status: int) -> web.Response:
        code, text, link = _NTFY_ERRORS.get(status, (status * 100 + 1, "error", ""))
        body: dict[str, Any] = {"code": code, "http": status, "error": text}
        if link:
            body["link"] = link
        return web.json_response(body, status=status)
