"""The document store's ``documents`` table: its schema, the statements that write it,
and the row reads and writes its operations share.

SQL text is only built from constants, hence the `noqa: S608` below; values are
always bound.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NoReturn

import orjson

from shared.domain.models import Document
from shared.ports import BatchFailed, Conflict, NotFound, PreconditionFailed, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    etag TEXT NOT NULL,
    expires_at REAL,
    body TEXT NOT NULL,
    PRIMARY KEY (container, id)
);
CREATE INDEX IF NOT EXISTS documents_tenant ON documents (container, tenant_id, id);
CREATE INDEX IF NOT EXISTS documents_expiry ON documents (expires_at)
    WHERE expires_at IS NOT NULL;
"""

_CHUNK = 500  # ids per IN (…), far below SQLite's limit on bound parameters

# ON CONFLICT … WHERE: an expired document still in the table does not block its id.
INSERT_HEAD = "INSERT INTO documents (container, id, tenant_id, etag, expires_at, body)"
ON_CONFLICT = """
ON CONFLICT (container, id) DO UPDATE SET tenant_id = excluded.tenant_id,
    etag = excluded.etag, expires_at = excluded.expires_at, body = excluded.body
WHERE documents.expires_at <= ?
"""
INSERT = f"{INSERT_HEAD} VALUES (?, ?, ?, ?, ?, ?) {ON_CONFLICT}"
UPDATE = "UPDATE documents SET etag = ?, expires_at = ?, body = ? WHERE container = ? AND id = ?"
UPSERT = INSERT.replace(
    "WHERE documents.expires_at <= ?",
    "WHERE documents.tenant_id = excluded.tenant_id OR documents.expires_at <= ?",
)
INCREMENT = (
    "INSERT INTO documents (container, id, tenant_id, etag, expires_at, body) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (container, id) DO UPDATE SET "
    "etag = excluded.etag, "
    "body = CASE WHEN documents.expires_at IS NOT NULL "
    "AND documents.expires_at <= ? THEN excluded.body "
    "ELSE json_set(documents.body, ?, "
    "coalesce(json_extract(documents.body, ?), 0) + ?) END, "
    "expires_at = CASE WHEN documents.expires_at IS NOT NULL "
    "AND documents.expires_at <= ? THEN excluded.expires_at "
    "ELSE documents.expires_at END "
    "WHERE documents.tenant_id = excluded.tenant_id "
    "RETURNING json_extract(body, ?)"
)


def load(etag: str, body: str) -> Document:
    """The document stored as ``body``, with its etag."""
    doc: Document = orjson.loads(body)
    doc["_etag"] = etag
    return doc


def live_body(
    conn: sqlite3.Connection,
    container: str,
    tenant_id: str,
    doc_id: str,
    etag: str | None,
    now: float,
) -> str:
    """The live body of the tenant's document; NotFound or PreconditionFailed."""
    row = conn.execute(
        "SELECT etag, body FROM documents WHERE container = ? AND id = ? "
        "AND tenant_id = ? AND (expires_at IS NULL OR expires_at > ?)",
        (container, doc_id, tenant_id, now),
    ).fetchone()
    if row is None:
        raise NotFound(f"{container}/{doc_id}")
    if etag is not None and row[0] != etag:
        raise PreconditionFailed(f"{container}/{doc_id} has changed")
    body: str = row[1]
    return body


def live_rows(
    conn: sqlite3.Connection, container: str, ids: Sequence[str], now: float
) -> dict[str, tuple[str, str, str]]:
    """id → (tenant_id, etag, body) of the live documents among ``ids``."""
    found: dict[str, tuple[str, str, str]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for doc_id, tenant_id, etag, body in conn.execute(
            "SELECT id, tenant_id, etag, body FROM documents WHERE container = ? "  # noqa: S608
            f"AND id IN ({', '.join('?' * len(chunk))}) "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (container, *chunk, now),
        ):
            found[doc_id] = (tenant_id, etag, body)
    return found


def rows_written(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run a write for every row; a unique-index violation is a Conflict."""
    try:
        return conn.executemany(sql, rows).rowcount
    except sqlite3.IntegrityError as exc:
        raise_conflict(exc)


def raise_conflict(exc: sqlite3.IntegrityError) -> NoReturn:
    """A unique-index violation as a Conflict; any other integrity error as it is."""
    if "UNIQUE" not in str(exc):
        raise exc
    raise Conflict("a unique field already has that value in this tenant") from exc


def write_all(
    conn: sqlite3.Connection,
    rows: Sequence[tuple[str, str, str, str, float | None, str]],
    kinds: Sequence[tuple[str, str | None]],
    now: float,
) -> None:
    """A transaction's writes in turn, ``(kind, etag)`` for each row; the first
    that fails raises BatchFailed (the caller's savepoint undoes the others). A run
    of creates goes in one statement once one query has found none of its ids live
    (analytics writes up to 99 markers per transaction)."""
    index = 0
    while index < len(rows):
        run = index
        while run < len(rows) and kinds[run][0] == "create":
            run += 1
        if run - index > 1:
            creates = rows[index:run]
            live = _live_ids(conn, creates[0][0], [r[1] for r in creates], now)
            taken = next((i for i, r in enumerate(creates) if r[1] in live), None)
            if taken is not None:
                raise BatchFailed(index + taken, Conflict(f"{creates[taken][1]} exists"))
            conn.execute("SAVEPOINT creates")
            try:
                rows_written(conn, INSERT, [(*row, now) for row in creates])
            except StoreError:  # a unique field taken: find which, one at a time
                conn.execute("ROLLBACK TO creates")
                conn.execute("RELEASE creates")
                for offset, row in enumerate(creates):
                    _write_one(conn, row, kinds[index + offset], index + offset, now)
            else:
                conn.execute("RELEASE creates")
            index = run
            continue
        _write_one(conn, rows[index], kinds[index], index, now)
        index += 1


def _live_ids(conn: sqlite3.Connection, container: str, ids: Sequence[str], now: float) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(
            doc_id
            for (doc_id,) in conn.execute(
                "SELECT id FROM documents WHERE container = ? "  # noqa: S608
                f"AND id IN ({', '.join('?' * len(chunk))}) "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (container, *chunk, now),
            )
        )
    return found


def _write_one(
    conn: sqlite3.Connection,
    row: tuple[str, str, str, str, float | None, str],
    kind_etag: tuple[str, str | None],
    index: int,
    now: float,
) -> None:
    kind, etag = kind_etag
    try:
        if kind == "create":
            if rows_written(conn, INSERT, [(*row, now)]) != 1:
                raise Conflict(f"{row[0]}/{row[1]} exists")
        elif kind == "upsert":
            if rows_written(conn, UPSERT, [(*row, now)]) != 1:
                raise Conflict(f"{row[0]}/{row[1]} belongs to another tenant")
        else:
            live_body(conn, row[0], row[2], row[1], etag, now)
            rows_written(conn, UPDATE, [(row[3], row[4], row[5], row[0], row[1])])
    except StoreError as exc:
        raise BatchFailed(index, exc) from exc
