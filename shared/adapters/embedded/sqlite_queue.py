"""Queue on SQLite with Service Bus semantics (peek-lock, dead-letter, schedule, dedup)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.adapters.embedded.sqlite_db import SqliteDatabase, insert_rows
from shared.adapters.embedded.sqlite_dedup import DuplicateDetection
from shared.ports import (
    Clock,
    MessageLockLost,
    OutgoingMessage,
    ReceivedMessage,
    Subscription,
    reaches_anyone,
    refuse_oversized,
    subscribers,
)

DEAD_LETTER = "/$DeadLetterQueue"
MAX_DELIVERY_EXCEEDED = "MaxDeliveryCountExceeded"

# visible_at is when a message can next be received: its scheduled time, or the end
# of its lock while locked (lock_token set and visible_at in the future).
SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY,  -- a new row takes max + 1: FIFO without a sequence table
    entity TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    subject TEXT,
    properties TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    lock_token TEXT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    dead_letter_reason TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (entity, visible_at, seq);
CREATE INDEX IF NOT EXISTS queue_messages_lock ON queue_messages (lock_token)
    WHERE lock_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_seen (
    entity TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (entity, message_id)
);
CREATE INDEX IF NOT EXISTS queue_seen_at ON queue_seen (seen_at);
"""

_SELECT = (
    "SELECT seq, message_id, body, subject, properties, enqueued_at, delivery_count, "
    "dead_letter_reason FROM queue_messages"
)


def subscriptions(
    topics: Mapping[str, Sequence[str | Subscription]],
) -> dict[str, tuple[Subscription, ...]]:
    """Topics with their subscriptions; a plain name is a subscription without a filter."""
    return {
        topic: tuple(s if isinstance(s, Subscription) else Subscription(s) for s in subs)
        for topic, subs in topics.items()
    }


def dead_letter_queue(entity: str) -> str:
    return entity if entity.endswith(DEAD_LETTER) else entity + DEAD_LETTER


def epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.timestamp()


class SqliteQueue:
    """Queues, topics fanned out to subscriptions, and dead-letter sub-queues."""

    def __init__(
        self,
        db: SqliteDatabase,
        clock: Clock,
        *,
        topics: Mapping[str, Sequence[str | Subscription]],
        max_delivery_count: int = 10,
        duplicate_window: timedelta = timedelta(minutes=10),
    ) -> None:
        self._db = db
        self._clock = clock
        self._topics = subscriptions(topics)
        self._max_delivery_count = max_delivery_count
        self._seen = DuplicateDetection(duplicate_window.total_seconds())
        self._events: dict[str, asyncio.Event] = {}
        # Lock tokens need only be unique: a random prefix per process and a counter.
        self._token_prefix = f"{uuid.uuid4().hex[:12]}-"
        self._tokens = itertools.count(1)
        with db.transaction(immediate=True) as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        return reaches_anyone(self._topics, entity, application_properties)

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        now = self._now()
        messages, refused = refuse_oversized(entity, messages)
        with self._db.transaction() as conn:
            fresh = self._seen.fresh(conn, entity, messages, now)
            rows = [
                (
                    target,
                    m.message_id,
                    m.body,
                    m.subject,
                    orjson.dumps(dict(m.application_properties)).decode(),
                    now,
                    max(now, epoch(m.scheduled_at)) if m.scheduled_at else now,
                )
                for m in fresh
                for target in subscribers(self._topics, entity, m)
            ]
            insert_rows(
                conn,
                "INSERT INTO queue_messages (entity, message_id, body, subject, properties, "
                "enqueued_at, visible_at)",
                rows,
            )
        self._notify(*{row[0] for row in rows})
        if refused is not None:
            raise refused

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._now()
        received: list[ReceivedMessage] = []
        with self._db.transaction() as conn:
            while len(received) < max_messages:
                rows = conn.execute(
                    f"{_SELECT} WHERE entity = ? AND visible_at <= ? "
                    "ORDER BY visible_at, seq LIMIT ?",
                    (entity, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    if self._exhausted(entity, row[6]):
                        self._move_to_dead_letter(conn, row[0], entity, MAX_DELIVERY_EXCEEDED, now)
                        continue
                    token = f"{self._token_prefix}{next(self._tokens)}"
                    conn.execute(
                        "UPDATE queue_messages SET lock_token = ?, visible_at = ?, "
                        "delivery_count = delivery_count + 1 WHERE seq = ?",
                        (token, now + lock_seconds, row[0]),
                    )
                    received.append(_received(row, token))
        return received

    async def complete(self, entity: str, message: ReceivedMessage) -> None:
        with self._db.transaction(one_write=True) as conn:
            deleted = conn.execute(
                "DELETE FROM queue_messages INDEXED BY queue_messages_lock "
                "WHERE lock_token = ? AND entity = ? AND visible_at > ?",
                (message.lock_token, entity, self._now()),
            ).rowcount
        if deleted != 1:
            raise MessageLockLost(f"the lock on {message.message_id} in {entity} is lost")

    async def abandon(self, entity: str, message: ReceivedMessage) -> None:
        now = self._now()
        with self._db.transaction() as conn:
            seq, delivery_count = self._locked(conn, entity, message)
            if self._exhausted(entity, delivery_count):
                self._move_to_dead_letter(conn, seq, entity, MAX_DELIVERY_EXCEEDED, now)
            else:
                conn.execute(
                    "UPDATE queue_messages SET lock_token = NULL, visible_at = ? WHERE seq = ?",
                    (now, seq),
                )
        self._notify(entity)

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None:
        with self._db.transaction() as conn:
            seq, _ = self._locked(conn, entity, message)
            self._move_to_dead_letter(conn, seq, entity, reason, self._now())

    # A poll bound the local runtime's consumer loops pass, not a cancellation deadline.
    async def wait_for_messages(self, entity: str, timeout: float) -> None:  # noqa: ASYNC109
        """Return when a message may be receivable from ``entity``, at most after ``timeout``."""
        row = self._db.connection.execute(
            "SELECT MIN(visible_at) FROM queue_messages WHERE entity = ?", (entity,)
        ).fetchone()
        now = self._now()
        if row[0] is not None:
            if row[0] <= now:
                return
            timeout = min(timeout, row[0] - now)
        event = self._events.setdefault(entity, asyncio.Event())
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))

    async def counts(self, entity: str) -> dict[str, int]:
        """How many messages are active, scheduled, locked and dead-lettered."""
        row = self._db.connection.execute(
            "SELECT SUM(entity = ?1 AND visible_at <= ?2), "
            "SUM(entity = ?1 AND visible_at > ?2 AND lock_token IS NULL), "
            "SUM(entity = ?1 AND visible_at > ?2 AND lock_token IS NOT NULL), "
            "SUM(entity = ?3) FROM queue_messages WHERE entity IN (?1, ?3)",
            (entity, self._now(), dead_letter_queue(entity)),
        ).fetchone()
        active, scheduled, locked, dead = (int(n or 0) for n in row)
        if entity.endswith(DEAD_LETTER):
            dead = 0
        return {"active": active, "scheduled": scheduled, "locked": locked, "dead_letter": dead}

    def _locked(
        self, conn: sqlite3.Connection, entity: str, message: ReceivedMessage
    ) -> tuple[int, int]:
        """(seq, delivery_count) of the message this lock still holds, else MessageLockLost."""
        # Pinned to the lock index: with many scheduled messages the planner would
        # otherwise pick the (entity, visible_at) index and scan them all.
        row = conn.execute(
            "SELECT seq, delivery_count FROM queue_messages INDEXED BY queue_messages_lock "
            "WHERE lock_token = ? AND entity = ? AND visible_at > ?",
            (message.lock_token, entity, self._now()),
        ).fetchone()
        if row is None:
            raise MessageLockLost(f"the lock on {message.message_id} in {entity} is lost")
        return row[0], row[1]

    def _exhausted(self, entity: str, delivery_count: int) -> bool:
        return delivery_count >= self._max_delivery_count and not entity.endswith(DEAD_LETTER)

    def _move_to_dead_letter(
        self, conn: sqlite3.Connection, seq: int, entity: str, reason: str, now: float
    ) -> None:
        target = dead_letter_queue(entity)
        conn.execute(
            "UPDATE queue_messages SET entity = ?, lock_token = NULL, visible_at = ?, "
            "dead_letter_reason = ? WHERE seq = ?",
            (target, now, reason, seq),
        )
        self._notify(target)

    def _notify(self, *entities: str) -> None:
        for entity in entities:
            event = self._events.get(entity)
            if event is not None:
                event.set()

    def _now(self) -> float:
        return self._clock.now().timestamp()


def _received(row: Sequence[Any], lock_token: str) -> ReceivedMessage:
    _, message_id, body, subject, properties, enqueued_at, delivery_count, reason = row
    return ReceivedMessage(
        message_id=message_id,
        body=bytes(body),
        delivery_count=delivery_count + 1,
        lock_token=lock_token,
        enqueued_at=datetime.fromtimestamp(enqueued_at, UTC),
        subject=subject,
        application_properties=orjson.loads(properties),
        dead_letter_reason=reason,
    )
