"""Duplicate detection of the SQLite queue: message ids seen per entity (``queue_seen``),
each a duplicate for a window after it was first sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from shared.ports import OutgoingMessage

PRUNE_EVERY = 5.0  # seconds between clean-ups of expired duplicate-detection ids
_CHUNK = 500
# Rows of three parameters per INSERT: far below SQLite's limit on bound parameters.
_SEEN_CHUNK = 300


class DuplicateDetection:
    """Drops the messages whose id was sent to the same entity within ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._pruned_at = 0.0

    def fresh(
        self,
        conn: sqlite3.Connection,
        entity: str,
        messages: Sequence[OutgoingMessage],
        now: float,
    ) -> list[OutgoingMessage]:
        """The messages not seen before, each id now seen at ``now``."""
        if now - self._pruned_at >= PRUNE_EVERY:  # not on every send: it costs a scan
            conn.execute("DELETE FROM queue_seen WHERE seen_at <= ?", (now - self._window,))
            self._pruned_at = now
        ids = list(dict.fromkeys(m.message_id for m in messages))
        # One statement in the common case: RETURNING names the ids not seen before.
        new = _returned(
            conn,
            ids,
            _SEEN_CHUNK,
            lambda chunk: (
                "INSERT OR IGNORE INTO queue_seen VALUES "  # noqa: S608
                f"{', '.join('(?, ?, ?)' for _ in chunk)} RETURNING message_id",
                [value for message_id in chunk for value in (entity, message_id, now)],
            ),
        )
        if len(new) < len(ids):
            new |= self._renew_expired(conn, entity, [i for i in ids if i not in new], now)
        fresh = []
        for m in messages:
            if m.message_id in new:
                new.discard(m.message_id)  # a repeat inside this call is a duplicate too
                fresh.append(m)
        return fresh

    def _renew_expired(
        self, conn: sqlite3.Connection, entity: str, ids: Sequence[str], now: float
    ) -> set[str]:
        """Ids seen before, but longer ago than the window (not pruned yet): fresh again."""
        return _returned(
            conn,
            ids,
            _CHUNK,
            lambda chunk: (
                "UPDATE queue_seen SET seen_at = ? WHERE entity = ? "  # noqa: S608
                f"AND message_id IN ({', '.join('?' * len(chunk))}) AND seen_at <= ? "
                "RETURNING message_id",
                (now, entity, *chunk, now - self._window),
            ),
        )


def _returned(
    conn: sqlite3.Connection,
    ids: Sequence[str],
    size: int,
    statement: Callable[[Sequence[str]], tuple[str, Sequence[Any]]],
) -> set[str]:
    """Run a ``… RETURNING message_id`` statement over ``ids`` in chunks of ``size``
    (bound parameters are limited); the ids it returned."""
    returned: set[str] = set()
    for start in range(0, len(ids), size):
        sql, params = statement(ids[start : start + size])
        returned.update(row[0] for row in conn.execute(sql, params))
    return returned
