"""One SQLite file shared by the embedded document store, queue and secret store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MEMORY = ":memory:"


class SqliteDatabase:
    """A lazily opened SQLite connection (WAL, synchronous=NORMAL) and its transactions.

    The adapters call SQLite synchronously from their coroutines: a statement takes
    microseconds, far less than a hop to a thread would cost.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path if path == MEMORY else Path(path)
        self._connection: sqlite3.Connection | None = None
        # Transactions share one connection, so two threads must not interleave them.
        self._lock = threading.RLock()

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
            self._connection = conn
        return self._connection

    @property
    def connection(self) -> sqlite3.Connection:
        return self.connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the block raises."""
        conn = self.connect()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def optimize(self) -> None:
        """Refresh stale planner statistics, as SQLite advises for long-lived connections.

        With them SQLite skip-scans the (tenant_id, field) indexes for queries across
        all tenants instead of reading every document.
        """
        if self._connection is not None:
            with self._lock:
                self._connection.execute("PRAGMA optimize")

    def close(self) -> None:
        if self._connection is not None:
            self.optimize()
            self._connection.close()
            self._connection = None
