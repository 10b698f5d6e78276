"""A provider peer: an aiohttp application served on 127.0.0.1 in its own thread.

Running in a thread of its own, a peer serves sync and async tests alike, and
``ocm serve`` subprocesses too. Every request it receives is recorded (method,
path, query, headers, body) for tests to inspect.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


@dataclass
class Peer:
    """Subclasses add routes in ``routes`` and keep their state on ``self``."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextmanager
    def running(self) -> Iterator[Peer]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stopping = asyncio.Event()

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            body = await request.read()
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            response: web.StreamResponse = await handler(request)
            return response

        async def main() -> None:
            """The peer's whole life in one coroutine: a stop cannot be lost."""
            app = web.Application(middlewares=[record], client_max_size=64 * 1024 * 1024)
            self.routes(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            sock = socket.socket()
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
            started.set()
            await stopping.wait()
            await runner.cleanup()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            loop.close()

        thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the peer did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stopping.set)
            thread.join(10)
