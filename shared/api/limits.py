"""The request boundary: the 10 MiB size limit, and answers only after durability."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.api.body import PARSED, DuplicateKey, read_checked
from shared.api.responses import problem

MAX_REQUEST_BYTES = 10 * 1024 * 1024


NOSNIFF = (b"x-content-type-options", b"nosniff")
"""On every answer: a browser never reads one as another type than it says (an echoed
``hub.challenge`` as HTML, say)."""


class RequestBoundary:
    """What every HTTP exchange keeps, in one pure ASGI layer:

    - a declared or streamed body over ``limit`` is refused with 413 problem+json
      before it is read in full; a body is read whole before the route sees it;
    - no answer starts before the writes made for it are durable (``flush``): the
      embedded store commits concurrent writers together, once per turn of the
      event loop, and a client must never hear 202 for a message not on disk;
    - a JSON body naming a key twice in one object is refused (400 JSON_DUPLICATE_KEY);
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
        # The body is read whole first (every route reads it whole anyway), so it is
        # judged before any route sees it.
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the route hears it after what came before
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        parts = [m.get("body", b"") for m in messages]
        try:
            parsed = read_checked(parts[0] if len(parts) == 1 else b"".join(parts))
        except DuplicateKey:
            await self._refuse_duplicates(scope, receive, send)
            return
        if parsed is not None:
            scope[PARSED] = parsed

        async def replayed_receive() -> Message:
            return messages.pop(0) if messages else await receive()

        async def durable_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self.flush()
                message = {**message, "headers": [*message.get("headers", ()), NOSNIFF]}
            await send(message)

        await self.app(scope, replayed_receive, durable_send)

    async def _refuse_duplicates(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            400,
            "JSON_DUPLICATE_KEY",
            "Duplicate JSON key",
            "A JSON object in the body names a key twice",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "REQUEST_TOO_LARGE",
            "Payload too large",
            f"A request body may be at most {self.limit} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)
