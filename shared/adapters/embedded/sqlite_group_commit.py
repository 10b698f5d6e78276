"""Group commit: the transactions of one shared SQLite connection, committed together
once per turn of the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    # The C fast path: no exception to raise and catch when there is no loop.
    return asyncio._get_running_loop()


class GroupCommit(ABC):
    """Units of writes on one connection, many to a COMMIT (see ``transaction``).

    Subclasses open the connection (``connect``) and hear of every commit
    (``_committed``).
    """

    def __init__(self) -> None:
        self._connection: sqlite3.Connection | None = None
        # Transactions share one connection, so two threads must not interleave them.
        self._lock = threading.RLock()
        self._group: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    @abstractmethod
    def connect(self) -> sqlite3.Connection:
        """The connection, opened unless it is open already."""

    @abstractmethod
    def _committed(self) -> None:
        """Called after every COMMIT."""

    @contextmanager
    def transaction(
        self, *, immediate: bool = False, one_write: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """A unit of writes, all or nothing.

        Inside a running event loop it joins the loop's current *group* transaction
        as a savepoint, and the group commits once, after every task ready in this
        turn of the loop has written: one COMMIT for many concurrent writers.
        Groups commit in order, so a later write is never on disk without the
        earlier ones. Before anything leaves the process (an HTTP answer), await
        ``flush()``. Without a running loop, or with ``immediate`` (schema set-up)
        when no group is open, it commits at once.

        ``one_write``: the unit writes with one statement (reads aside), which SQLite
        applies whole or not at all by itself, so it needs no savepoint of its own.
        """
        conn = self.connect()
        with self._lock:
            loop = _running_loop()
            if (loop is None or immediate) and self._group is None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self._committed()
                return
            if self._group is None:
                assert loop is not None
                conn.execute("BEGIN IMMEDIATE")
                self._group = loop.create_future()
                loop.call_soon(self._commit_group)
            if one_write:
                try:
                    yield conn
                except BaseException as exc:
                    if not conn.in_transaction:
                        self._fail_group(exc)
                    raise
                return
            conn.execute("SAVEPOINT unit")
            try:
                yield conn
            except BaseException as exc:
                if not conn.in_transaction:  # SQLite rolled back the whole group itself
                    self._fail_group(exc)
                    raise
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                raise
            conn.execute("RELEASE unit")

    async def flush(self) -> None:
        """Return once every write made so far is committed, or raise if it was lost.

        The last closed group is awaited too: if it failed, writes made in it are
        gone even though nothing is open any more.
        """
        group = self._group or self._closed
        if group is not None:
            await asyncio.shield(group)

    def _commit_group(self) -> None:
        group, self._group = self._group, None
        if group is None or self._connection is None:
            return
        self._closed = group
        try:
            with self._lock:
                self._connection.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")
            self._settle_failed(group, exc)
        else:
            group.set_result(None)
            self._committed()

    def _fail_group(self, exc: BaseException) -> None:
        """The open group's transaction is gone (disk full, I/O error): every unit
        in it is lost, and the next write starts a new group."""
        group, self._group = self._group, None
        if group is not None:
            self._closed = group
            self._settle_failed(group, exc)

    @staticmethod
    def _settle_failed(group: asyncio.Future[None], exc: BaseException) -> None:
        log.error("a group of writes was rolled back: %s", exc)
        if not group.done():
            group.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            group.exception()  # retrieved here; every flush() of the group still sees it
