"""A Telegram Bot API peer: ``/bot<token>/<method>`` as core.telegram.org/bots/api has it.

Every answer is the API's envelope: ``{"ok": true, "result": …}`` or ``{"ok": false,
"error_code", "description", "parameters"?}`` with the HTTP status equal to the
error code. A token of the wrong shape answers 404 Not Found, an unknown one 401
Unauthorized, as the real API does. ``sendMessage``, ``sendPhoto``,
``sendDocument``, ``sendVideo``, ``sendAudio``, ``setWebhook``, ``getMe`` and
``getWebhookInfo`` are served; parameters come as JSON, a form or a query string.

Errors on demand: ``answers[chat_id]`` answers every send to that chat, and
``fail_next`` answers the next sends in order (BLOCKED, CHAT_NOT_FOUND, flood(…),
migrated(…), …). ``@username`` chats must be listed in ``usernames``.

Webhook side: the update builders below make Update objects, and ``webhook_headers``
the headers Telegram sends with them (the ``secret_token`` given to setWebhook in
``X-Telegram-Bot-Api-Secret-Token``); ``deliver`` POSTs one to the URL set by
``setWebhook`` like Telegram does.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiohttp import web

from tests.peers.base import Peer

EXAMPLE_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"  # the docs' own example
BOT_ID = 123456
BOT_USERNAME = "ocm_test_bot"
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
PARSE_MODES = {"HTML", "MarkdownV2", "Markdown"}
_update_ids = itertools.count(500_000_000)


@dataclass(frozen=True)
class Answer:
    """An unsuccessful Bot API answer."""

    status: int
    description: str
    parameters: dict[str, int] | None = None

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.status)


BLOCKED = Answer(403, "Forbidden: bot was blocked by the user")
DEACTIVATED = Answer(403, "Forbidden: user is deactivated")
KICKED = Answer(403, "Forbidden: bot was kicked from the group chat")
CHAT_NOT_FOUND = Answer(400, "Bad Request: chat not found")
UNAUTHORIZED = Answer(401, "Unauthorized")
NOT_FOUND = Answer(404, "Not Found")
INTERNAL = Answer(500, "Internal Server Error")
BAD_GATEWAY = Answer(502, "Bad Gateway")


def flood(seconds: int) -> Answer:
    return Answer(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


def migrated(new_chat_id: int) -> Answer:
    return Answer(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": new_chat_id},
    )


def bad_request(what: str) -> Answer:
    return Answer(400, f"Bad Request: {what}")


# method → (the file parameter, or "text" for sendMessage; its Message field)
_SENDS = {
    "sendmessage": ("text", "text"),
    "sendphoto": ("photo", "photo"),
    "senddocument": ("document", "document"),
    "sendvideo": ("video", "video"),
    "sendaudio": ("audio", "audio"),
}


@dataclass
class TelegramPeer(Peer):
    token: str = EXAMPLE_TOKEN
    answers: dict[str, Answer] = field(default_factory=dict)
    fail_next: list[Answer] = field(default_factory=list)
    usernames: dict[str, int] = field(default_factory=lambda: {"@ocm_news": -1001234567890})
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, lower case)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    require_https: bool = True
    _message_ids: dict[int, int] = field(default_factory=dict)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._call)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def _not_found(self, request: web.Request) -> web.Response:
        return NOT_FOUND.response()

    async def _call(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not _TOKEN.fullmatch(token):
            return NOT_FOUND.response()
        if token != self.token:
            return UNAUTHORIZED.response()
        params = await _params(request)
        if params is None:
            return bad_request("can't parse JSON object").response()
        method = request.match_info["method"].lower()  # method names ignore case
        if method in _SENDS:
            return self._send(method, params)
        if method == "setwebhook":
            return self._set_webhook(params)
        if method == "getme":
            return _ok(
                {"id": BOT_ID, "is_bot": True, "first_name": "OCM", "username": BOT_USERNAME}
            )
        if method == "getwebhookinfo":
            return _ok({"url": self.webhook_url or "", "pending_update_count": 0})
        return NOT_FOUND.response()

    def _send(self, method: str, params: dict[str, Any]) -> web.Response:
        chat = params.get("chat_id")
        if chat in (None, ""):
            return bad_request("chat_id is empty").response()
        injected = self.fail_next.pop(0) if self.fail_next else self.answers.get(str(chat))
        if injected is not None:
            return injected.response()
        chat_id = self._resolve(chat)
        if chat_id is None:
            return CHAT_NOT_FOUND.response()
        problem = _check(method, params)
        if problem is not None:
            return bad_request(problem).response()
        self.sent.append((method, params))
        return _ok(self._message(method, chat_id, params))

    def _resolve(self, chat: Any) -> int | None:
        if isinstance(chat, int) and not isinstance(chat, bool):
            return chat
        text = str(chat)
        if re.fullmatch(r"-?\d{1,20}", text):
            return int(text)
        return self.usernames.get(text)

    def _message(self, method: str, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message_id = self._message_ids.get(chat_id, 0) + 1
        self._message_ids[chat_id] = message_id
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "OCM", "username": BOT_USERNAME},
            "chat": _chat(chat_id),
            "date": int(time.time()),
        }
        file_param, message_field = _SENDS[method]
        if method == "sendmessage":
            message["text"] = params["text"]
            return message
        file = {"file_id": f"peer-{file_param}-{message_id}", "file_unique_id": f"u{message_id}"}
        message[message_field] = (
            [{**file, "width": 800, "height": 600}] if method == "sendphoto" else file
        )
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if url and self.require_https and not url.startswith("https://"):
            return bad_request("bad webhook: An HTTPS URL must be provided for webhook").response()
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            return bad_request("secret token contains unallowed characters").response()
        self.webhook_url = url or None
        self.webhook_secret = str(secret) if secret is not None else None
        return web.json_response(
            {
                "ok": True,
                "result": True,
                "description": "Webhook was set" if url else "Webhook was deleted",
            }
        )

    async def deliver(self, update: dict[str, Any]) -> httpx.Response:
        """POST an update to the webhook set by setWebhook, as Telegram does."""
        if self.webhook_url is None:
            raise RuntimeError("no webhook is set")
        headers = webhook_headers(self.webhook_secret)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(
                self.webhook_url, content=orjson.dumps(update), headers=headers
            )


async def _params(request: web.Request) -> dict[str, Any] | None:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return params


def _check(method: str, params: dict[str, Any]) -> str | None:
    """What the API would refuse in these parameters, as its description says it."""
    parse_mode = params.get("parse_mode")
    if parse_mode not in (None, "") and parse_mode not in PARSE_MODES:
        return f"unsupported parse_mode {parse_mode!r}"
    if method == "sendmessage":
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return "message text is empty"
        return "message is too long" if len(text) > 4096 else None
    file_param = _SENDS[method][0]
    if not params.get(file_param):
        return f"there is no {file_param} in the request"
    caption = params.get("caption")
    return "message caption is too long" if caption and len(str(caption)) > 1024 else None


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Ann"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "OCM test chat"}


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


# -- the webhook side ---------------------------------------------------------


def webhook_headers(secret: str | None) -> dict[str, str]:
    """The headers of Telegram's webhook POST (the secret header only if one is set)."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return headers


def message_update(
    message: dict[str, Any], *, update_id: int | None = None, kind: str = "message"
) -> dict[str, Any]:
    """An Update carrying ``message`` under ``kind`` (message, channel_post, …)."""
    return {"update_id": next(_update_ids) if update_id is None else update_id, kind: message}


def user_message(
    *,
    chat_id: int = 4242,
    from_id: int | None = None,
    message_id: int = 1,
    date: int = 1_767_225_600,  # 2026-01-01T00:00:00Z
    first_name: str = "Ann",
    last_name: str | None = "Example",
    **fields: Any,
) -> dict[str, Any]:
    """A Message from a user in a private chat (or a group, with a negative chat id)."""
    user: dict[str, Any] = {"id": from_id or chat_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    chat = (
        _chat(chat_id)
        if chat_id < 0
        else {"id": chat_id, "type": "private", "first_name": first_name}
    )
    return {"message_id": message_id, "from": user, "chat": chat, "date": date, **fields}


def text_update(text: str, *, update_id: int | None = None, **message: Any) -> dict[str, Any]:
    return message_update(user_message(text=text, **message), update_id=update_id)


def photo_update(
    file_ids: tuple[str, ...] = ("small", "medium", "large"),
    *,
    caption: str | None = None,
    update_id: int | None = None,
    **message: Any,
) -> dict[str, Any]:
    """A photo in growing sizes (Telegram lists several, the largest last)."""
    sizes = [
        {"file_id": f, "file_unique_id": f"u-{f}", "width": 90 * (i + 1), "height": 60 * (i + 1)}
        for i, f in enumerate(file_ids)
    ]
    extra = {"caption": caption} if caption else {}
    return message_update(user_message(photo=sizes, **extra, **message), update_id=update_id)


def document_update(
    file_id: str = "BQACAgIAAxkBAAIC",
    *,
    mime_type: str | None = "application/pdf",
    caption: str | None = None,
    update_id: int | None = None,
    **message: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {"file_id": file_id, "file_unique_id": "u-doc", "file_name": "a.pdf"}
    if mime_type:
        document["mime_type"] = mime_type
    extra = {"caption": caption} if caption else {}
    return message_update(user_message(document=document, **extra, **message), update_id=update_id)


def channel_post_update(
    text: str, *, chat_id: int = -1001234567890, update_id: int | None = None
) -> dict[str, Any]:
    """A channel post: no ``from``, the channel chat is the author."""
    post = {
        "message_id": 7,
        "sender_chat": {"id": chat_id, "type": "channel", "title": "OCM news"},
        "chat": {"id": chat_id, "type": "channel", "title": "OCM news", "username": "ocm_news"},
        "date": 1_767_225_600,
        "text": text,
    }
    return message_update(post, update_id=update_id, kind="channel_post")
