"""One SQLite file shared by the embedded document store, queue and secret store."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.adapters.embedded.sqlite_group_commit import GroupCommit

MEMORY = ":memory:"
log = logging.getLogger(__name__)
MAX_ROWS_PER_STATEMENT = 512
CHECKPOINT_INTERVAL = 0.2
"""At most this often (seconds) the checkpointer copies committed pages into the file."""
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""The WAL file is cut back to this size when it is reused."""
BACKSTOP_CHECKPOINT_PAGES = 16000
"""SQLite's own checkpoint, inside a COMMIT, only once the WAL reaches this many pages
(64 MiB): under steady writes the checkpointer's PASSIVE checkpoints never catch up
with the last commit, and only a checkpoint right after a commit lets the WAL start
over. By then the checkpointer has copied most pages, so this one copies the rest."""
RESTART_AFTER = 5.0
"""A checkpointer thread that died is started again by a commit after this long."""


class SqliteDatabase(GroupCommit):
    """A lazily opened SQLite connection (WAL, synchronous=NORMAL) and its transactions
    (group commit: ``GroupCommit``).

    The adapters call SQLite synchronously from their coroutines: a statement takes
    microseconds, far less than a hop to a thread would cost. Checkpoints (copying
    the WAL's committed pages into the database file, with its fsyncs) are the
    exception: SQLite would run one inside every COMMIT that finds the WAL over 1000
    pages, on the event loop; a checkpointer thread with its own connection runs them
    instead, after commits, at most every ``CHECKPOINT_INTERVAL``, and SQLite works
    without the GIL meanwhile. SQLite's own stays as a backstop, rarely
    (``BACKSTOP_CHECKPOINT_PAGES``), so the WAL is bounded under any load.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = path if path == MEMORY else Path(path)
        self._checkpointer: _Checkpointer | None = None

    def connect(self) -> sqlite3.Connection:
        """Open the file (creating its directory) unless it is open already."""
        if self._connection is None:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see transaction()).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            if isinstance(self.path, Path):
                conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
                conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
                self._checkpointer = _Checkpointer(self.path)
            self._connection = conn
        return self._connection

    @property
    def connection(self) -> sqlite3.Connection:
        return self.connect()

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    def optimize(self) -> None:
        """Refresh stale planner statistics, as SQLite advises for long-lived connections.

        With them SQLite skip-scans the (tenant_id, field) indexes for queries across
        all tenants instead of reading every document.
        """
        if self._connection is not None:
            with self._lock:
                self._connection.execute("PRAGMA optimize")

    def close(self) -> None:
        if self._group is not None:
            self._commit_group()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._connection is not None:
            self.optimize()
            self._connection.close()
            self._connection = None


class _Checkpointer:
    """A thread that checkpoints one database file after commits, on its own connection.

    PASSIVE checkpoints never block the writer; a nudge while one runs (or within
    ``CHECKPOINT_INTERVAL`` of the last) is served by the next. The thread starts
    with the first nudge and sleeps on an event when nothing is written; if it dies
    (it logs why), a nudge ``RESTART_AFTER`` seconds later starts another.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started_at = 0.0

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def nudge(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        self._wanted.set()

    def _start(self) -> None:
        with self._starting:
            thread, now = self._thread, time.monotonic()
            if self._stopping.is_set() or (thread is not None and thread.is_alive()):
                return
            if thread is not None and now - self._started_at < RESTART_AFTER:
                return
            self._started_at = now
            self._thread = threading.Thread(
                target=self._run, name=f"ocm-checkpoint-{self._path.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        with self._starting:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
        except Exception as exc:  # a later nudge starts another thread
            log.warning("the checkpointer could not open %s: %s", self._path.name, exc)
            return
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next nudge tries again
                    log.warning("a WAL checkpoint failed: %s", exc)
                if self._stopping.wait(CHECKPOINT_INTERVAL):
                    return
        except Exception:
            log.exception("the checkpointer stopped")
        finally:
            conn.close()


def insert_rows(
    conn: sqlite3.Connection,
    head: str,
    rows: Sequence[Sequence[Any]],
    *,
    tail: str = "",
    tail_params: Sequence[Any] = (),
) -> int:
    """``head VALUES (…), (…), … tail`` over ``rows``, many rows per statement; the
    number of rows changed.

    One statement takes hundreds of rows into SQLite in one call, where
    ``executemany`` makes a call per row: a batch's writes cost about a third less.
    Statements take ``MAX_ROWS_PER_STATEMENT`` rows, or a power of two for the rest,
    so a few SQL texts serve every batch size (and stay in the statement cache).
    """
    if not rows:
        return 0
    width = len(rows[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(tail_params)
    largest = min(MAX_ROWS_PER_STATEMENT, 1 << ((limit // width).bit_length() - 1))
    changed, start = 0, 0
    while start < len(rows):
        left = len(rows) - start
        count = largest if left >= largest else 1 << (left.bit_length() - 1)
        part = rows[start : start + count]
        params = [value for row in part for value in row]
        if len(params) != width * count:
            raise ValueError("every row must have as many values as the first")
        params.extend(tail_params)
        changed += conn.execute(_rows_sql(head, width, count, tail), params).rowcount
        start += count
    return changed


@lru_cache(maxsize=256)
def _rows_sql(head: str, width: int, count: int, tail: str) -> str:
    row = f"({', '.join('?' * width)})"
    return f"{head} VALUES {', '.join([row] * count)} {tail}"
