"""The request boundary: the 10 MiB size limit, and answers only after durability."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.api.responses import problem

MAX_REQUEST_BYTES = 10 * 1024 * 1024


class _TooLarge(Exception):
    pass


NOSNIFF = (b"x-content-type-options", b"nosniff")
"""On every answer: a browser never reads one as another type than it says (an echoed
``hub.challenge`` as HTML, say)."""


class RequestBoundary:
    """What every HTTP exchange keeps, in one pure ASGI layer:

    - a declared or streamed body over ``limit`` is refused with 413 problem+json
      before it is read in full;
    - no answer starts before the writes made for it are durable (``flush``): the
      embedded store commits concurrent writers together, once per turn of the
      event loop, and a client must never hear 202 for a message not on disk;
    - every answer says ``X-Content-Type-Options: nosniff``.
    """

    def __init__(
        self,
        app: ASGIApp,
        flush: Callable[[], Awaitable[None]],
        limit: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.app, self.flush, self.limit = app, flush, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def durable_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                await self.flush()
                started = True
                message = {**message, "headers": [*message.get("headers", ()), NOSNIFF]}
            await send(message)

        try:
            await self.app(scope, limited_receive, durable_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "REQUEST_TOO_LARGE",
            "Payload too large",
            f"A request body may be at most {self.limit} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)
