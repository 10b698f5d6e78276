"""The embedded database commits concurrent writers together, in order, and
``flush`` returns only once everything written before it is on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from shared.adapters.embedded import sqlite_db
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


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_the_checkpointer_thread_copies_commits_into_the_file(tmp_path: Path) -> None:
    """Below SQLite's own (backstop) threshold, committed pages still reach the
    database file: the checkpointer thread copied them, off the event loop."""
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    backstop = db.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert backstop == sqlite_db.BACKSTOP_CHECKPOINT_PAGES
    filler = "x" * 2000
    docs = [{"id": f"tn_{i}", "tenant_id": "tn_a", "filler": filler} for i in range(1000)]
    await store.create_many(TENANTS, docs)  # ~3 MB: far below the backstop's 64 MiB
    await db.flush()
    assert db._checkpointer is not None
    thread = db._checkpointer.thread
    assert thread is not None and thread.is_alive()
    deadline = asyncio.get_running_loop().time() + 10
    while path.stat().st_size < 2_000_000 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert path.stat().st_size >= 2_000_000  # the pages are in the file itself
    db.close()
    assert not thread.is_alive()


async def test_the_wal_stays_bounded_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers that never pause leave the checkpointer no moment to let the WAL start
    over; SQLite's backstop checkpoint does, so the WAL stays near its threshold
    (made 16 MiB here instead of 64, to write less)."""
    monkeypatch.setattr(sqlite_db, "BACKSTOP_CHECKPOINT_PAGES", 4000)
    path = tmp_path / "ocm.sqlite3"
    db = SqliteDatabase(path)
    store = SqliteDocumentStore(db, CONTAINERS, SystemClock())
    filler = "x" * 1000
    batches = 0
    needed = 48_000_000 // (20 * len(filler))  # three times the backstop's 16 MiB
    deadline = asyncio.get_running_loop().time() + 60

    async def writer(w: int) -> None:
        nonlocal batches
        while batches < needed and asyncio.get_running_loop().time() < deadline:
            batch = batches
            batches += 1
            docs = [{"id": f"t{batch}_{i}", "tenant_id": "tn_a", "f": filler} for i in range(20)]
            await store.create_many(TENANTS, docs)
            await db.flush()

    await asyncio.gather(*(writer(w) for w in range(20)))
    assert batches >= needed, "too little written to show anything"
    assert wal_bytes(path) < 32 * 1024 * 1024
    db.close()


def test_a_checkpointer_that_died_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_db, "RESTART_AFTER", 0.0)
    checkpointer = sqlite_db._Checkpointer(tmp_path / "no such directory" / "ocm.sqlite3")
    checkpointer.nudge()
    first = checkpointer.thread
    assert first is not None
    first.join(timeout=10)
    assert not first.is_alive()  # it could not open the file, and said so
    assert "could not open" in caplog.text
    checkpointer.nudge()
    second = checkpointer.thread
    assert second is not None and second is not first
    checkpointer.stop()
