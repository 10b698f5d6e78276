"""Run the Functions app on one machine: what `ocm serve` does.

uvicorn serves the same FastAPI app the AsgiFunctionApp wraps; every Service Bus
and timer trigger that ``function_app.app`` declares (found by introspection) runs
here against the embedded queue, through the same trigger functions Azure calls,
with real ``azure.functions`` objects. A trigger that returns completes its
queue message; one that raises abandons it (redelivered, then dead-lettered), as
in Azure.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from azure.functions.decorators.function_app import FunctionRegister
from azure.functions.timer import TimerRequest
from croniter import croniter

from ocm_cli import apart
from ocm_cli.http_protocol import bounded_protocol
from ocm_cli.triggers import Trigger, call, discover, to_functions_message
from shared.ports import Queue, ReceivedMessage
from shared.services.deps import Deps

log = logging.getLogger("ocm.runtime")

CONCURRENCY = 16
"""Messages handled at once per trigger, as host.json's maxConcurrentCalls."""
BATCH = 256
"""Messages a batch trigger is given at once at most (host.json maxMessageBatchSize)."""
BATCH_WAIT = 1.0
"""After a batch that was not full, a batch trigger waits this long for more (the
Functions host's maxBatchWaitTime, ~1 s): analytics then counts more facts per
transaction, off the sending path's CPU, and stays well within its 5 s freshness."""
IDLE_WAIT = 1.0
SHUTDOWN_GRACE = 10.0
HTTP_FIRST_MAX_WAIT = 0.2
"""How long a queue consumer lets HTTP requests go first (see _defer)."""
HTTP_QUIET = 0.002
"""No request for this long, and none in progress: HTTP is not busy."""


class LocalRuntime:
    """The triggers of one FunctionApp, run against the embedded queue."""

    def __init__(self, app: FunctionRegister, deps: Deps) -> None:
        self.deps = deps
        self.queue: Queue = deps.queue
        self.triggers = discover(app, deps.settings)
        self.stopping = asyncio.Event()
        self.http_in_flight = 0
        self._http_last = 0.0  # loop time a request last started or ended

    def counting(self, asgi: Any) -> Any:
        """``asgi`` wrapped to count the HTTP requests in progress (see _defer)."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await asgi(scope, receive, send)  # type: ignore[no-any-return]
            loop = asyncio.get_running_loop()
            self.http_in_flight += 1
            self._http_last = loop.time()
            try:
                await asgi(scope, receive, send)
            finally:
                self.http_in_flight -= 1
                self._http_last = loop.time()

        return app

    async def _defer(self) -> None:
        """Let HTTP requests go first, for at most HTTP_FIRST_MAX_WAIT.

        One process serves the API and runs every consumer, so under a burst of
        sends, dispatching what was accepted competes with accepting more; in Azure
        they run on separate instances. Here answers come first: a consumer waits
        (holding no message) while a request is in progress or one came within
        HTTP_QUIET (a flood has momentary gaps), then takes its batch anyway. So
        dispatch slows under a flood but never stops (at least CONCURRENCY messages
        per HTTP_FIRST_MAX_WAIT per trigger), and at a steady pace, with requests
        some milliseconds apart, it waits a few milliseconds at most.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + HTTP_FIRST_MAX_WAIT
        while not self.stopping.is_set():
            now = loop.time()
            quiet_in = self._http_last + HTTP_QUIET - now
            if now >= until or (not self.http_in_flight and quiet_in <= 0):
                return
            # Polls a rate, which no event signals.
            await asyncio.sleep(min(max(quiet_in, HTTP_QUIET / 2), until - now))

    async def run_consumers(self) -> None:
        tasks = [
            asyncio.create_task(
                self._consume(t) if t.kind == "queue" else self._tick(t), name=t.name
            )
            for t in self.triggers
        ]
        await self.stopping.wait()
        # Let handlers in progress finish (their messages complete); then cancel
        # what is left — its locks expire and the messages are redelivered.
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, trigger: Trigger) -> None:
        lock_seconds = self.deps.settings.OCM_QUEUE_LOCK_SECONDS
        while not self.stopping.is_set():
            await self._defer()
            try:
                batch = await self.queue.receive(
                    trigger.target,
                    max_messages=BATCH if trigger.many else CONCURRENCY,
                    lock_seconds=lock_seconds,
                )
            except Exception:  # e.g. the file is locked by another process: keep going
                log.exception("%s could not receive; retrying in %ss", trigger.name, IDLE_WAIT)
                await asyncio.sleep(IDLE_WAIT)
                continue
            if not batch:
                await self._wait(trigger.target)
                continue
            if self.stopping.is_set():
                for msg in batch:
                    await _settle(self.queue.abandon(trigger.target, msg))
                return
            if trigger.many:
                await self._handle_batch(trigger, batch)
                if len(batch) < BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), timeout=BATCH_WAIT)
                continue
            # A batch finishes together: a message accepted meanwhile waits for the
            # slowest of it, so keep handlers short (they never call out for long).
            await asyncio.gather(*(self._handle(trigger, m) for m in batch))

    async def _wait(self, entity: str) -> None:
        waiter: Callable[[str, float], Awaitable[None]] | None = getattr(
            self.queue, "wait_for_messages", None
        )
        wait = waiter(entity, IDLE_WAIT) if waiter is not None else asyncio.sleep(0.05)
        stop = asyncio.ensure_future(self.stopping.wait())
        done = asyncio.ensure_future(wait)
        await asyncio.wait((stop, done), return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, done):
            task.cancel()

    async def _handle(self, trigger: Trigger, msg: ReceivedMessage) -> None:
        try:
            await call(trigger.function, to_functions_message(msg))
        except Exception:
            log.exception("%s failed on message %s; abandoning", trigger.name, msg.message_id)
            await _settle(self.queue.abandon(trigger.target, msg))
        else:
            await _settle(self.queue.complete(trigger.target, msg))

    async def _handle_batch(self, trigger: Trigger, batch: list[ReceivedMessage]) -> None:
        """One call with the whole batch: completed together, or abandoned together."""
        try:
            await call(trigger.function, [to_functions_message(m) for m in batch])
        except Exception:
            log.exception("%s failed on a batch of %d; abandoning", trigger.name, len(batch))
            settle = self.queue.abandon
        else:
            settle = self.queue.complete
        for msg in batch:
            await _settle(settle(trigger.target, msg))

    async def _tick(self, trigger: Trigger) -> None:
        schedule = croniter(trigger.target, datetime.now(UTC), second_at_beginning=True)
        while not self.stopping.is_set():
            due: datetime = schedule.get_next(datetime)
            delay = (due - datetime.now(UTC)).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                if self.stopping.is_set():
                    return
            past_due = (datetime.now(UTC) - due).total_seconds() > 5
            try:
                await call(trigger.function, TimerRequest(past_due=past_due))
            except Exception:
                log.exception("timer %s failed", trigger.name)


async def _settle(action: Awaitable[None]) -> None:
    try:
        await action
    except Exception as exc:  # a lost lock: the message will be redelivered
        log.warning("could not settle a queue message: %s", exc)


YOUNG_GENERATION_THRESHOLD = 10_000


def _tune_garbage_collection() -> None:
    """A server allocating many short-lived objects per request (a 1000-message batch
    is ~50k) collects far less often with a larger young generation; what start-up
    built is frozen out of every collection. Measured: ~10 % less CPU per message."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` stops HTTP and triggers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FunctionRegister, asgi: Any, deps: Deps, *, host: str, port: int) -> None:
    """Serve HTTP and run every trigger until SIGINT/SIGTERM; then stop cleanly.

    Accepted messages are persisted before the 202, so stopping loses nothing: a
    message being handled is abandoned or redelivered after its lock expires.
    """
    runtime = LocalRuntime(app, deps)
    side = None
    batch_triggers = tuple(t.name for t in runtime.triggers if t.many)
    if batch_triggers and deps.settings.OCM_BACKEND == "embedded":
        runtime.triggers = [t for t in runtime.triggers if not t.many]
        side = apart.start(deps.settings, batch_triggers)
    _tune_garbage_collection()
    config = uvicorn.Config(
        runtime.counting(asgi),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        http=bounded_protocol(deps.settings.OCM_HTTP_READ_TIMEOUT_SECONDS),
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True
        runtime.stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    consumers = asyncio.create_task(runtime.run_consumers())
    log.info(
        "OCM listening on http://%s:%d (triggers: %s)",
        host,
        port,
        ", ".join(t.name for t in runtime.triggers),
    )
    try:
        await server.serve()
    finally:
        runtime.stopping.set()
        await consumers
        if side is not None:
            await asyncio.to_thread(apart.stop, side)
