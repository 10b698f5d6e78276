"""The embedded database commits concurrent writers together, in order, and
``flush`` returns only once everything written before it is on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from shared.adapters.embedded.clock import SystemClock
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.containers import CONTAINERS, TENANTS


def committed_ids(path: Path) -> set[str]:
    """What another connection (another process) sees: committed rows only."""
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT id FROM documents")}


async def test_writes_are_durable_once_flush_returns(tmp_path: Path) -> None:
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    await store.create(TENANTS, {"id": "tn_a", "tenant_id": "tn_a"})
    assert await store.read(TENANTS, "tn_a", "tn_a") is not None  # visible at once here
    await db.flush()
    assert "tn_a" in committed_ids(path)
    db.close()


async def test_concurrent_writers_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    commits = 0
    original = db._commit_group

    def counting() -> None:
        nonlocal commits
        commits += 1
        original()

    db._commit_group = counting  # type: ignore[method-assign]
    ids = [f"tn_{i}" for i in range(20)]
    await asyncio.gather(*(store.create(TENANTS, {"id": i, "tenant_id": i}) for i in ids))
    await db.flush()
    assert commits == 1
    assert set(ids) <= committed_ids(path)
    db.close()


async def test_a_failed_unit_rolls_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    await store.create(TENANTS, {"id": "tn_a", "tenant_id": "tn_a"})
    clash = [{"id": "tn_b", "tenant_id": "tn_b"}, {"id": "tn_a", "tenant_id": "tn_a"}]
    results = await asyncio.gather(store.create_many(TENANTS, clash), return_exceptions=True)
    assert results[0].__class__.__name__ == "Conflict"
    await db.flush()
    assert committed_ids(path) == {"tn_a"}  # tn_b went with its failed unit only
    db.close()


async def test_a_failed_single_write_leaves_the_rest_of_its_group(tmp_path: Path) -> None:
    """Single-statement writes skip their savepoint: SQLite undoes a failed
    statement by itself, and the group's other writes commit."""
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    await store.create(TENANTS, {"id": "tn_a", "tenant_id": "tn_a"})
    await db.flush()
    results = await asyncio.gather(
        store.create(TENANTS, {"id": "tn_b", "tenant_id": "tn_b"}),
        store.create(TENANTS, {"id": "tn_a", "tenant_id": "tn_a", "again": True}),
        store.create(TENANTS, {"id": "tn_c", "tenant_id": "tn_c"}),
        return_exceptions=True,
    )
    assert [r.__class__.__name__ for r in results] == ["dict", "Conflict", "dict"]
    await db.flush()
    assert committed_ids(path) == {"tn_a", "tn_b", "tn_c"}
    assert "again" not in (await store.read(TENANTS, "tn_a", "tn_a") or {})
    db.close()


def test_without_an_event_loop_each_transaction_commits_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    db.close()


async def test_a_group_lost_to_a_full_disk_is_reported_and_the_next_write_starts_afresh(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    pages = db.connection.execute("PRAGMA page_count").fetchone()[0]
    db.connection.execute(f"PRAGMA max_page_count={pages + 40}")  # a nearly full disk
    await store.create(TENANTS, {"id": "tn_a", "tenant_id": "tn_a"})
    with pytest.raises(sqlite3.DatabaseError, match="full"):
        await store.create(TENANTS, {"id": "tn_b", "tenant_id": "tn_b", "pad": "x" * 400_000})
    with pytest.raises(sqlite3.DatabaseError):
        await db.flush()  # tn_a's group is gone: its writer must not hear success
    await store.create(TENANTS, {"id": "tn_c", "tenant_id": "tn_c"})
    await db.flush()
    assert committed_ids(path) == {"tn_c"}
    db.close()


def wal_pages(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size // 4096 if Path(f"{path}-wal").exists() else 0


async def test_checkpoints_run_off_the_event_loop(tmp_path: Path) -> None:
    """Committed pages reach the database file by the checkpointer thread: the event
    loop's COMMITs never checkpoint (SQLite's automatic checkpoint is off), yet the
    file grows and the WAL is reused instead of growing without end."""
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    assert db.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    checkpointers = []
    filler = "x" * 2000
    for round_ in range(4):  # ~4 MB, over SQLite's 1000-page automatic checkpoint
        docs = [
            {"id": f"tn_{round_}_{i}", "tenant_id": "tn_a", "filler": filler} for i in range(500)
        ]
        await store.create_many(TENANTS, docs)
        await db.flush()
        checkpointers = [t for t in threading.enumerate() if t.name.startswith("ocm-checkpoint")]
        await asyncio.sleep(0.3)  # a checkpoint per interval at most
    assert checkpointers, "no checkpointer thread ran"
    deadline = asyncio.get_running_loop().time() + 5
    while path.stat().st_size < 3_000_000 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert path.stat().st_size >= 3_000_000  # the pages are in the file itself
    assert wal_pages(path) < 1500  # reused after each checkpoint, not ~1000 pages a round
    db.close()
    assert not any(t.is_alive() for t in checkpointers)
