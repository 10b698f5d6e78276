"""A webhook endpoint on loopback, as a client application would run one.

Every call is kept with the secrets it verifies with — checked by the
``standardwebhooks`` library's own ``Webhook(secret).verify``, never by our code.
By default it answers 200; ``answer_next`` scripts the next calls' answers (a 500,
a 429 with Retry-After, a 410, a redirect, a slow answer), after which the default
resumes.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from tests.peers.base import Peer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    """Seconds to wait before answering (a slow endpoint)."""


@dataclass(frozen=True)
class Call:
    """One call as received, and what came of it."""

    path: str
    headers: dict[str, str]
    """Lower-case names; the last value of a repeated header."""
    fields: tuple[tuple[str, str], ...]
    """Every header line as received."""
    body: bytes
    verified_by: tuple[str, ...]
    """The receiver's secrets whose signature checked out."""
    status: int

    def json(self) -> Any:
        return orjson.loads(self.body)

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.fields if k.lower() == name.lower()]


@dataclass
class WebhookReceiver(Peer):
    secrets: list[str] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)
    calls: list[Call] = field(default_factory=list)
    _script: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, n: int, answer: Answer) -> None:
        """Answer the next ``n`` calls with ``answer``."""
        with self._lock:
            self._script.extend([answer] * n)

    def fail_next(self, n: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        self.answer_next(n, Answer(status, headers or {}, b"failure of the day"))

    def redirect_next(self, n: int, location: str, status: int = 307) -> None:
        self.answer_next(n, Answer(status, {"Location": location}, b""))

    def slow_next(self, n: int, seconds: float) -> None:
        self.answer_next(n, Answer(delay=seconds))

    def hook_url(self, path: str = "/hook") -> str:
        return self.url + path

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        fields = tuple(request.headers.items())
        headers = {k.lower(): v for k, v in fields}
        with self._lock:
            answer = self._script.pop(0) if self._script else self.default
        verified = tuple(s for s in self.secrets if _verifies(s, body, headers))
        self.calls.append(Call(request.path, headers, fields, body, verified, answer.status))
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True
