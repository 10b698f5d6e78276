"""uvicorn's HTTP/1.1 protocol with a deadline for reading each request.

uvicorn times out idle keep-alive connections, and any byte resets that timer; nothing
bounds how long a request's head and body may take to arrive, so 300 connections
sending a header byte every 5 s stayed open (slow loris). Here a request must arrive
whole within ``OCM_HTTP_READ_TIMEOUT_SECONDS`` of its first byte (of the connection, for
the first); past that the connection is closed. In Azure the Functions front end does
this for the app.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState


def bounded_protocol(read_timeout: float) -> type[H11Protocol]:
    """The protocol class uvicorn builds per connection, with this read deadline."""

    class BoundedH11Protocol(H11Protocol):
        def __init__(self, config: Config, server_state: ServerState, **kwargs: object) -> None:
            super().__init__(config, server_state, **kwargs)  # type: ignore[arg-type]
            self._read_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._read_deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()  # a next request on a kept-alive connection begins
            super().data_received(data)
            if self.conn.their_state is not h11.SEND_BODY and self.conn.their_state is not (
                h11.IDLE
            ):
                self._disarm()  # the request is whole (or the connection is ending)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._read_deadline = self.loop.call_later(read_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._read_deadline is not None:
                self._read_deadline.cancel()
                self._read_deadline = None

        def _too_slow(self) -> None:
            self._read_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol
