"""Batch triggers in a process of their own: what `ocm serve` runs beside itself.

In Azure each function scales on instances of its own; in one Python process every
trigger shares one interpreter, so the analytics consumer's work (a marker per fact)
was taken from sending. Here the batch triggers (``cardinality="many"``) run in a
second process on the same data directory — the machine's other core — and the
main process runs the rest. SQLite serialises their writes (WAL, one writer at a
time, each waiting up to its busy timeout).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from multiprocessing.process import BaseProcess

from shared.config import Settings

log = logging.getLogger("ocm.runtime")

STOP_WAIT = 20.0


def start(settings: Settings, names: tuple[str, ...]) -> BaseProcess:
    """The process running ``names`` (trigger names), started."""
    process = multiprocessing.get_context("spawn").Process(
        target=_main, args=(settings, names), name="ocm-batch-triggers", daemon=True
    )
    process.start()
    log.info("batch triggers (%s) run in process %s", ", ".join(names), process.pid)
    return process


def stop(process: BaseProcess) -> None:
    """Ask it to stop (it lets batches in progress finish), then make it."""
    if process.is_alive():
        process.terminate()  # SIGTERM: its runtime stops as the main one does
        process.join(STOP_WAIT)
    if process.is_alive():
        process.kill()
        process.join(5)


def _main(settings: Settings, names: tuple[str, ...]) -> None:
    logging.basicConfig(
        level=settings.OCM_LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run(settings, names))


async def _run(settings: Settings, names: tuple[str, ...]) -> None:
    import function_app
    from ocm_cli.local_runtime import LocalRuntime
    from shared import bootstrap

    async with bootstrap.running(settings) as deps:
        bootstrap.set_deps(deps)
        runtime = LocalRuntime(function_app.app, deps)
        runtime.triggers = [t for t in runtime.triggers if t.name in names]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.stopping.set)
        try:
            await runtime.run_consumers()
        finally:
            bootstrap.set_deps(None)
