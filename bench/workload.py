"""What the sections send, and reading what OCM stored (its SQLite file, read-only)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson

from bench.stats import parse_time

RECEIVER = {"type": "phone", "address": "+4791234567"}
PENDING = ("scheduled", "queued", "sending")


def message(text: str = "Your code is 1234") -> dict[str, Any]:
    """One sandbox SMS whose ``sent`` is final (no delivery receipt follows)."""
    return {
        "channel": "sandbox",
        "receiver": RECEIVER,
        "content": {"type": "text", "text": text},
        "options": {"sandbox": {"delivery": "none"}},
    }


def batch_body(size: int) -> bytes:
    return orjson.dumps({"messages": [message() for _ in range(size)]})


def headers(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key, "Content-Type": "application/json"}


def _connect(database: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10))


def stored_messages(database: Path) -> Iterator[dict[str, Any]]:
    """Every message document OCM stored, as its JSON body."""
    with _connect(database) as conn:
        for (body,) in conn.execute("SELECT body FROM documents WHERE container = 'messages'"):
            yield orjson.loads(body)


def count_settled(database: Path, tenant_id: str) -> tuple[int, int]:
    """(the tenant's messages, those no longer scheduled, queued or sending), read through
    OCM's own indexes so that polling costs the server next to nothing."""
    with _connect(database) as conn:
        (total,) = conn.execute(
            "SELECT count(*) FROM documents WHERE container = 'messages' AND tenant_id = ?",
            (tenant_id,),
        ).fetchone()
        (pending,) = conn.execute(
            "SELECT count(*) FROM documents WHERE container = 'messages' AND tenant_id = ? "
            "AND json_extract(body, '$.status') IN (?, ?, ?)",
            (tenant_id, *PENDING),
        ).fetchone()
    return int(total), int(total) - int(pending)


def wait_settled(
    database: Path, tenant_id: str, expected: int, timeout: float, poll: float = 0.25
) -> bool:
    """Wait until ``expected`` messages have left the pending statuses; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_settled(database, tenant_id)[1] >= expected:
            return True
        time.sleep(poll)
    return count_settled(database, tenant_id)[1] >= expected


def sent_at(doc: dict[str, Any]) -> float | None:
    """The epoch time of the message's ``message.sent`` event, if it has one."""
    for event in doc.get("events", ()):
        if event.get("type") == "message.sent":
            return parse_time(event["at"]).timestamp()
    return None


def created_at(doc: dict[str, Any]) -> float:
    return parse_time(doc["created_at"]).timestamp()
