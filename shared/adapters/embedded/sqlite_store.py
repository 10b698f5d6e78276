"""DocumentStore on SQLite: JSON bodies, per-container expression indexes, keyset pages."""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.adapters.documents import (
    apply_changes,
    check_name,
    check_partition,
    decode_cursor,
    encode_cursor,
    expiry,
    transaction_key,
)
from shared.adapters.embedded.sqlite_db import SqliteDatabase, insert_rows
from shared.adapters.embedded.sqlite_sql import after_cursor_sql, field_sql, index_ddl, where_sql
from shared.adapters.embedded.sqlite_table import (
    INCREMENT,
    INSERT,
    INSERT_HEAD,
    ON_CONFLICT,
    SCHEMA,
    UPDATE,
    UPSERT,
    live_body,
    live_rows,
    load,
    raise_conflict,
    rows_written,
    write_all,
)
from shared.domain.models import Document
from shared.ports import (
    SYSTEM,
    Clock,
    Conflict,
    ContainerSpec,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Scope,
    Write,
)


# SQL text is only built from constants and names check_name() accepted (see
# sqlite_sql), hence the `noqa: S608` below; values are always bound.
class SqliteDocumentStore:
    """Documents in one ``documents`` table keyed by (container, id)."""

    def __init__(
        self, db: SqliteDatabase, containers: Sequence[ContainerSpec], clock: Clock
    ) -> None:
        self._db = db
        self._clock = clock
        self._containers = {spec.name: spec for spec in containers}
        # A random prefix keeps etags unique across processes sharing the file.
        self._etag_prefix = os.urandom(6).hex()
        self._etag_counter = itertools.count(1)
        with db.transaction(immediate=True) as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for spec in containers:
                for statement in index_ddl(spec):
                    conn.execute(statement)

    async def create(self, container: str, doc: Document) -> Document:
        now = self._now()
        row = self._row(container, doc, now)
        with self._db.transaction(one_write=True) as conn:
            if rows_written(conn, INSERT, [(*row, now)]) != 1:
                raise Conflict(f"{container}/{row[1]} exists")
        return load(row[3], row[5])

    async def create_many(self, container: str, docs: Sequence[Document]) -> None:
        now = self._now()
        rows = [self._row(container, doc, now) for doc in docs]
        with self._db.transaction() as conn:
            try:
                written = insert_rows(conn, INSERT_HEAD, rows, tail=ON_CONFLICT, tail_params=(now,))
            except sqlite3.IntegrityError as exc:
                raise_conflict(exc)
            if written != len(rows):
                raise Conflict(f"a document of this batch exists in {container}")

    async def read(self, container: str, scope: Scope, doc_id: str) -> Document | None:
        self._spec(container)
        row = self._db.connection.execute(
            "SELECT tenant_id, etag, body FROM documents WHERE container = ? AND id = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (container, doc_id, self._now()),
        ).fetchone()
        if row is None or (scope is not SYSTEM and row[0] != scope):
            return None
        return load(row[1], row[2])

    async def replace(self, container: str, doc: Document, *, etag: str | None = None) -> Document:
        now = self._now()
        _, doc_id, tenant_id, new_etag, expires_at, body = self._row(container, doc, now)
        with self._db.transaction(one_write=True) as conn:
            # The common case in one statement; only a miss looks at why.
            updated = rows_written(
                conn,
                UPDATE + " AND tenant_id = ? AND (expires_at IS NULL OR expires_at > ?)"
                " AND (? IS NULL OR etag = ?)",
                [(new_etag, expires_at, body, container, doc_id, tenant_id, now, etag, etag)],
            )
            if updated != 1:
                live_body(conn, container, tenant_id, doc_id, etag, now)
                raise PreconditionFailed(f"{container}/{doc_id} has changed")
        return load(new_etag, body)

    async def upsert(self, container: str, doc: Document) -> Document:
        now = self._now()
        row = self._row(container, doc, now)
        with self._db.transaction(one_write=True) as conn:
            if rows_written(conn, UPSERT, [(*row, now)]) != 1:
                raise Conflict(f"{container}/{row[1]} belongs to another tenant")
        return load(row[3], row[5])

    async def patch(
        self,
        container: str,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> Document:
        now = self._now()
        self._spec(container)
        with self._db.transaction(one_write=True) as conn:
            body = live_body(conn, container, tenant_id, doc_id, etag, now)
            doc: Document = orjson.loads(body)
            apply_changes(doc, changes)
            new_etag, body = self._new_etag(), orjson.dumps(doc).decode()
            rows_written(conn, UPDATE, [(new_etag, expiry(doc, now), body, container, doc_id)])
        doc["_etag"] = new_etag
        return doc

    async def patch_many(
        self,
        container: str,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
    ) -> int:
        """Patch each ``(tenant_id, id, changes, etag)`` that still matches; returns how many."""
        now = self._now()
        unique = bool(self._spec(container).unique)
        rows = []
        with self._db.transaction() as conn:
            current = live_rows(conn, container, [item[1] for item in items], now)
            for tenant_id, doc_id, changes, etag in items:
                found = current.get(doc_id)
                if found is None or found[0] != tenant_id or etag not in (None, found[1]):
                    continue
                doc: Document = orjson.loads(found[2])
                apply_changes(doc, changes)
                row = (self._new_etag(), expiry(doc, now), orjson.dumps(doc).decode())
                if unique:  # one by one, so a clash skips only its own item
                    try:
                        rows_written(conn, UPDATE, [(*row, container, doc_id)])
                    except Conflict:
                        continue
                rows.append((*row, container, doc_id))
                current[doc_id] = (tenant_id, row[0], row[2])
            if not unique:
                conn.executemany(UPDATE, rows)
        return len(rows)

    async def delete(
        self, container: str, tenant_id: str, doc_id: str, *, etag: str | None = None
    ) -> bool:
        now = self._now()
        self._spec(container)
        with self._db.transaction(one_write=True) as conn:
            try:
                live_body(conn, container, tenant_id, doc_id, etag, now)
            except NotFound:
                return False
            conn.execute(
                "DELETE FROM documents WHERE container = ? AND id = ?", (container, doc_id)
            )
        return True

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        transaction_key(self._spec(container), writes)
        now = self._now()
        rows = [self._row(container, write.doc, now) for write in writes]
        with self._db.transaction() as conn:
            write_all(conn, rows, [(w.kind, w.etag) for w in writes], now)
        return [load(row[3], row[5]) for row in rows]

    async def query(self, container: str, query: Query) -> Page:
        if query.limit < 1:
            raise ValueError("limit must be at least 1")
        spec = self._spec(container)
        spec.check_query(query)
        where, params = where_sql(check_name(spec.name), query, self._now())
        order = field_sql(query.order_by)
        branches: list[tuple[str, list[Any]]] = [("1", [])]
        if query.cursor is not None:
            value, last_id = decode_cursor(query.cursor, query.order_by)
            branches = after_cursor_sql(order, query.descending, value, last_id)
        direction = "DESC" if query.descending else "ASC"
        rows: list[Any] = []
        for sql, values in branches:
            if len(rows) > query.limit:
                break
            rows += self._db.connection.execute(
                f"SELECT id, etag, body, {order} FROM documents "  # noqa: S608
                f"WHERE {' AND '.join(where)} AND {sql} "
                f"ORDER BY {order} {direction}, id {direction} LIMIT ?",
                (*params, *values, query.limit + 1 - len(rows)),
            ).fetchall()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_cursor(query.order_by, rows[-1][3], rows[-1][0]) if more else None
        return Page([load(etag, body) for _, etag, body, _ in rows], cursor)

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        self._spec(container)
        check_name(field)
        now = self._now()
        path = f"$.{field}"
        fresh = orjson.dumps({"id": doc_id, "tenant_id": tenant_id, field: by, "ttl": ttl}).decode()
        with self._db.transaction(one_write=True) as conn:
            # One statement: create, or add to a live document of this tenant (an
            # expired one starts again from ``by``).
            row = conn.execute(
                INCREMENT,
                (
                    container,
                    doc_id,
                    tenant_id,
                    self._new_etag(),
                    now + ttl,
                    fresh,
                    now,
                    path,
                    path,
                    by,
                    now,
                    path,
                ),
            ).fetchone()
        if row is None:
            raise Conflict(f"{container}/{doc_id} belongs to another tenant")
        value: int = row[0]
        return value

    async def purge_expired(self) -> int:
        """Delete expired documents (invisible already) and refresh planner statistics,
        this being the store's periodic upkeep; returns how many were deleted."""
        with self._db.transaction() as conn:
            removed: int = conn.execute(
                "DELETE FROM documents WHERE expires_at <= ?", (self._now(),)
            ).rowcount
        self._db.optimize()
        return removed

    def _row(
        self, container: str, doc: Document, now: float
    ) -> tuple[str, str, str, str, float | None, str]:
        self._spec(container)
        doc_id, tenant_id = doc.get("id"), doc.get("tenant_id")
        if not isinstance(doc_id, str) or not isinstance(tenant_id, str):
            raise ValueError("a document needs a string id and tenant_id")
        check_partition(self._containers[container], doc)
        body = doc if "_etag" not in doc else {k: v for k, v in doc.items() if k != "_etag"}
        return (
            container,
            doc_id,
            tenant_id,
            self._new_etag(),
            expiry(body, now),
            orjson.dumps(body).decode(),
        )

    def _spec(self, container: str) -> ContainerSpec:
        try:
            return self._containers[container]
        except KeyError:
            raise ValueError(f"unknown container {container!r}") from None

    def _new_etag(self) -> str:
        return f"{self._etag_prefix}{next(self._etag_counter):x}"

    def _now(self) -> float:
        return self._clock.now().timestamp()
