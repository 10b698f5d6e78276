"""DocumentStore contract: every adapter of the port passes these."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure.cosmos import CosmosDocumentStore
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.adapters.embedded.sqlite_store import SqliteDocumentStore
from shared.ports import (
    SYSTEM,
    Conflict,
    Filter,
    NotFound,
    PreconditionFailed,
    Query,
)
from tests.contract.conftest import SPECS
from tests.fakes import FakeClock, FakeDocumentStore

Store = FakeDocumentStore | SqliteDocumentStore | CosmosDocumentStore
PRAGMAS = ("journal_mode", "synchronous", "busy_timeout")


def note(doc_id: str, tenant: str = "tn_a", **fields: Any) -> dict[str, Any]:
    return {"id": doc_id, "tenant_id": tenant, **fields}


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


# --- create and read -------------------------------------------------------------------


async def test_a_created_document_reads_back_with_an_etag(store: Store) -> None:
    created = await store.create("notes", note("n1", text="hi", meta={"group": "g"}))
    read = await store.read("notes", "tn_a", "n1")
    assert isinstance(created["_etag"], str)
    assert read == created == note("n1", text="hi", meta={"group": "g"}, _etag=created["_etag"])


@pytest.mark.needs("global_ids")
async def test_creating_an_existing_id_is_a_conflict_even_in_another_tenant(store: Store) -> None:
    await store.create("notes", note("n1"))
    with pytest.raises(Conflict):
        await store.create("notes", note("n1"))
    with pytest.raises(Conflict):
        await store.create("notes", note("n1", tenant="tn_b"))


async def test_every_write_gets_a_new_etag(store: Store) -> None:
    etags = [(await store.create("notes", note("n1")))["_etag"]]
    etags.append((await store.replace("notes", note("n1", v=1)))["_etag"])
    etags.append((await store.upsert("notes", note("n1", v=2)))["_etag"])
    etags.append((await store.patch("notes", "tn_a", "n1", {"v": 3}))["_etag"])
    assert len(set(etags)) == 4
    assert (await store.read("notes", "tn_a", "n1"))["_etag"] == etags[-1]  # type: ignore[index]


async def test_returned_documents_are_fresh_copies(store: Store) -> None:
    await store.create("notes", note("n1", meta={"group": "g"}))
    first = await store.read("notes", "tn_a", "n1")
    assert first is not None
    first["meta"]["group"] = "changed"
    first["extra"] = True
    assert await store.read("notes", "tn_a", "n1") == note(
        "n1", meta={"group": "g"}, _etag=first["_etag"]
    )


async def test_another_tenants_document_reads_as_none_but_system_reads_it(store: Store) -> None:
    await store.create("notes", note("n1", tenant="tn_b"))
    assert await store.read("notes", "tn_a", "n1") is None
    assert (await store.read("notes", SYSTEM, "n1"))["tenant_id"] == "tn_b"  # type: ignore[index]


async def test_a_missing_document_reads_as_none(store: Store) -> None:
    assert await store.read("notes", "tn_a", "nope") is None
    assert await store.read("notes", SYSTEM, "nope") is None


# --- replace, upsert, delete and etags -------------------------------------------------


async def test_replacing_a_missing_document_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.replace("notes", note("n1"))


async def test_replacing_another_tenants_document_is_not_found(store: Store) -> None:
    await store.create("notes", note("n1", tenant="tn_b", v=1))
    with pytest.raises(NotFound):
        await store.replace("notes", note("n1", tenant="tn_a", v=2))
    assert (await store.read("notes", "tn_b", "n1"))["v"] == 1  # type: ignore[index]


async def test_a_stale_etag_is_refused(store: Store) -> None:
    created = await store.create("notes", note("n1", v=1))
    current = await store.replace("notes", note("n1", v=2), etag=created["_etag"])
    with pytest.raises(PreconditionFailed):
        await store.replace("notes", note("n1", v=3), etag=created["_etag"])
    assert (await store.read("notes", "tn_a", "n1")) == current


async def test_the_documents_own_etag_is_not_a_precondition(store: Store) -> None:
    created = await store.create("notes", note("n1", v=1))
    await store.replace("notes", note("n1", v=2))
    replaced = await store.replace("notes", {**created, "v": 3})
    assert replaced["v"] == 3 and replaced["_etag"] != created["_etag"]


async def test_upsert_creates_then_replaces_unconditionally(store: Store) -> None:
    await store.upsert("notes", note("n1", v=1))
    await store.upsert("notes", note("n1", v=2))
    assert (await store.read("notes", "tn_a", "n1"))["v"] == 2  # type: ignore[index]


@pytest.mark.needs("global_ids")
async def test_upserting_another_tenants_id_is_a_conflict(store: Store) -> None:
    await store.create("notes", note("n1", tenant="tn_b"))
    with pytest.raises(Conflict):
        await store.upsert("notes", note("n1", tenant="tn_a"))


async def test_delete_says_whether_it_deleted(store: Store) -> None:
    await store.create("notes", note("n1"))
    assert await store.delete("notes", "tn_a", "n1") is True
    assert await store.delete("notes", "tn_a", "n1") is False
    assert await store.read("notes", "tn_a", "n1") is None


async def test_delete_in_another_tenant_deletes_nothing(store: Store) -> None:
    await store.create("notes", note("n1", tenant="tn_b"))
    assert await store.delete("notes", "tn_a", "n1") is False
    assert await store.read("notes", "tn_b", "n1") is not None


async def test_delete_with_a_stale_etag_is_refused(store: Store) -> None:
    created = await store.create("notes", note("n1"))
    current = await store.patch("notes", "tn_a", "n1", {"v": 1})
    with pytest.raises(PreconditionFailed):
        await store.delete("notes", "tn_a", "n1", etag=created["_etag"])
    assert await store.delete("notes", "tn_a", "n1", etag=current["_etag"]) is True


# --- patch -----------------------------------------------------------------------------


async def test_patch_sets_top_level_and_dotted_fields(store: Store) -> None:
    await store.create("notes", note("n1", keep=1, meta={"group": "g", "old": 1}, gone="x"))
    patched = await store.patch(
        "notes", "tn_a", "n1", {"v": 2, "meta.group": "h", "a.b.c": 3, "gone": None}
    )
    expected = note("n1", keep=1, meta={"group": "h", "old": 1}, gone=None, v=2, a={"b": {"c": 3}})
    assert patched == {**expected, "_etag": patched["_etag"]}
    assert await store.read("notes", "tn_a", "n1") == patched


async def test_patching_another_tenants_document_is_not_found(store: Store) -> None:
    await store.create("notes", note("n1", tenant="tn_b"))
    with pytest.raises(NotFound):
        await store.patch("notes", "tn_a", "n1", {"v": 1})
    with pytest.raises(NotFound):
        await store.patch("notes", "tn_a", "missing", {"v": 1})


async def test_patch_with_a_stale_etag_is_refused(store: Store) -> None:
    created = await store.create("notes", note("n1"))
    await store.patch("notes", "tn_a", "n1", {"v": 1}, etag=created["_etag"])
    with pytest.raises(PreconditionFailed):
        await store.patch("notes", "tn_a", "n1", {"v": 2}, etag=created["_etag"])


@pytest.mark.parametrize("field", ["id", "tenant_id", "_etag"])
async def test_patch_cannot_move_a_document(store: Store, field: str) -> None:
    await store.create("notes", note("n1"))
    with pytest.raises(ValueError):
        await store.patch("notes", "tn_a", "n1", {field: "other"})


async def test_patch_many_applies_each_item_that_still_matches(store: Store) -> None:
    docs = [await store.create("notes", note(f"n{i}", v=0)) for i in range(4)]
    await store.create("notes", note("b1", tenant="tn_b", v=0))
    await store.patch("notes", "tn_a", "n3", {"v": 9})
    applied = await store.patch_many(
        "notes",
        [
            ("tn_a", "n0", {"v": 1, "meta.group": "g"}, docs[0]["_etag"]),
            ("tn_a", "n1", {"v": 1}, None),
            ("tn_a", "n3", {"v": 1}, docs[3]["_etag"]),
            ("tn_a", "b1", {"v": 1}, None),
            ("tn_a", "missing", {"v": 1}, None),
        ],
    )
    assert applied == 2
    found = {d["id"]: d for d in (await store.query("notes", Query(scope=SYSTEM))).items}
    assert {i: d["v"] for i, d in found.items()} == {"b1": 0, "n0": 1, "n1": 1, "n2": 0, "n3": 9}
    assert found["n0"]["meta"] == {"group": "g"} and found["n0"]["_etag"] != docs[0]["_etag"]


async def test_patch_many_skips_an_item_that_would_break_a_unique_field(store: Store) -> None:
    await store.create_many("people", [note("p1", name="ann"), note("p2", name="bob")])
    applied = await store.patch_many(
        "people", [("tn_a", "p1", {"name": "bob"}, None), ("tn_a", "p2", {"age": 3}, None)]
    )
    assert applied == 1
    assert (await store.read("people", "tn_a", "p1"))["name"] == "ann"  # type: ignore[index]
    assert (await store.read("people", "tn_a", "p2"))["age"] == 3  # type: ignore[index]


async def test_patch_many_applies_repeated_ids_in_turn(store: Store) -> None:
    created = await store.create("notes", note("n1"))
    items = [("tn_a", "n1", {"a": 1}, created["_etag"]), ("tn_a", "n1", {"b": 2}, None)]
    assert await store.patch_many("notes", items) == 2
    read = await store.read("notes", "tn_a", "n1")
    assert read is not None and (read["a"], read["b"]) == (1, 2)


# --- unique keys -----------------------------------------------------------------------


async def test_a_unique_field_clashes_within_a_tenant(store: Store) -> None:
    await store.create("people", note("p1", name="ann", contact={"email": "a@x"}))
    await store.create("people", note("p2", name="bob"))
    with pytest.raises(Conflict):
        await store.create("people", note("p3", name="ann"))
    with pytest.raises(Conflict):
        await store.create("people", note("p3", name="cid", contact={"email": "a@x"}))
    with pytest.raises(Conflict):
        await store.replace("people", note("p2", name="ann"))
    with pytest.raises(Conflict):
        await store.patch("people", "tn_a", "p2", {"name": "ann"})
    assert (await store.read("people", "tn_a", "p2"))["name"] == "bob"  # type: ignore[index]


async def test_the_same_unique_value_in_two_tenants_is_fine(store: Store) -> None:
    await store.create("people", note("p1", tenant="tn_a", name="ann"))
    await store.create("people", note("p2", tenant="tn_b", name="ann"))


async def test_missing_or_null_unique_values_are_not_checked(store: Store) -> None:
    await store.create("people", note("p1"))
    await store.create("people", note("p2"))
    await store.create("people", note("p3", name=None, contact={"email": None}))


async def test_a_document_keeps_its_own_unique_value_when_rewritten(store: Store) -> None:
    await store.create("people", note("p1", name="ann"))
    await store.replace("people", note("p1", name="ann", age=3))
    await store.upsert("people", note("p1", name="ann", age=4))
    await store.patch("people", "tn_a", "p1", {"name": "ann"})


async def test_deleting_frees_a_unique_value(store: Store) -> None:
    await store.create("people", note("p1", name="ann"))
    await store.delete("people", "tn_a", "p1")
    await store.create("people", note("p2", name="ann"))


# --- create_many -----------------------------------------------------------------------


async def test_create_many_writes_every_document(store: Store) -> None:
    await store.create_many("notes", [note(f"n{i}", i=i) for i in range(50)])
    page = await store.query("notes", Query(scope="tn_a", limit=100))
    assert sorted(d["i"] for d in page.items) == list(range(50))


async def test_create_many_writes_a_thousand_and_more(store: Store) -> None:
    """More documents than one statement takes (the embedded store writes a few hundred
    at a time), and a clash in the last part undoes the earlier parts too."""
    await store.create("notes", note("n1000"))
    with pytest.raises(Conflict):
        await store.create_many("notes", [note(f"n{i}", i=i) for i in range(1001)])
    assert await store.read("notes", "tn_a", "n0") is None
    await store.create_many("notes", [note(f"m{i}", i=i) for i in range(1001)])
    page = await store.query("notes", Query(scope="tn_a", limit=1000))
    got = list(page.items)
    if page.next_cursor:
        rest = Query(scope="tn_a", limit=1000, cursor=page.next_cursor)
        got += (await store.query("notes", rest)).items
    assert sorted(d["i"] for d in got if d["id"].startswith("m")) == list(range(1001))


@pytest.mark.parametrize(
    "batch",
    [
        [note("n1"), note("n2"), note("n0")],
        [note("n1"), note("n2"), note("n1")],
        pytest.param(
            [note("n1"), note("p", tenant="tn_b"), note("n0", tenant="tn_b")],
            marks=pytest.mark.needs("global_ids"),
        ),
    ],
    ids=["existing id", "id twice in batch", "existing id in another tenant"],
)
async def test_create_many_is_all_or_nothing(store: Store, batch: list[dict[str, Any]]) -> None:
    await store.create("notes", note("n0"))
    with pytest.raises(Conflict):
        await store.create_many("notes", batch)
    assert await store.read("notes", SYSTEM, "n1") is None
    assert await store.read("notes", SYSTEM, "p") is None


async def test_create_many_is_all_or_nothing_on_a_unique_clash(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.create_many("people", [note("p1", name="ann"), note("p2", name="ann")])
    assert await store.read("people", "tn_a", "p1") is None


# --- TTL -------------------------------------------------------------------------------


@pytest.mark.needs("clock")
async def test_a_document_expires_ttl_seconds_after_its_last_write(
    store: Store, clock: FakeClock
) -> None:
    await store.create_many("notes", [note("n1", ttl=10), note("n2", ttl=10)])
    clock.advance(6)
    await store.patch("notes", "tn_a", "n1", {"v": 1})
    await store.patch_many("notes", [("tn_a", "n2", {"v": 1}, None)])
    clock.advance(9)
    assert await store.read("notes", "tn_a", "n1") is not None
    assert await store.read("notes", "tn_a", "n2") is not None
    clock.advance(1)
    assert await store.read("notes", "tn_a", "n1") is None
    assert await store.read("notes", SYSTEM, "n2") is None


@pytest.mark.needs("clock")
async def test_expired_documents_are_invisible_to_every_operation(
    store: Store, clock: FakeClock
) -> None:
    await store.create("notes", note("n1", ttl=5))
    await store.create("notes", note("n2"))
    clock.advance(5)
    assert ids((await store.query("notes", Query(scope="tn_a"))).items) == ["n2"]
    assert ids((await store.query("notes", Query(scope=SYSTEM))).items) == ["n2"]
    with pytest.raises(NotFound):
        await store.patch("notes", "tn_a", "n1", {"v": 1})
    with pytest.raises(NotFound):
        await store.replace("notes", note("n1"))
    assert await store.delete("notes", "tn_a", "n1") is False
    assert await store.patch_many("notes", [("tn_a", "n1", {"v": 1}, None)]) == 0


@pytest.mark.needs("clock")
async def test_an_expired_id_can_be_created_again(store: Store, clock: FakeClock) -> None:
    await store.create("notes", note("n1", ttl=5))
    clock.advance(5)
    await store.create("notes", note("n1", v=2))
    await store.create_many("notes", [note("n2", ttl=1)])
    clock.advance(1)
    await store.create_many("notes", [note("n2", v=3)])
    assert (await store.read("notes", "tn_a", "n2"))["v"] == 3  # type: ignore[index]


@pytest.mark.needs("clock")
async def test_purge_removes_only_expired_documents(store: Store, clock: FakeClock) -> None:
    await store.create("notes", note("n1", ttl=5))
    await store.create("notes", note("n2", ttl=50))
    await store.create("notes", note("n3"))
    clock.advance(5)
    assert await store.purge_expired() == 1
    assert ids((await store.query("notes", Query(scope="tn_a"))).items) == ["n2", "n3"]


# --- queries ---------------------------------------------------------------------------


async def test_a_query_sees_only_its_tenant_and_system_sees_all(store: Store) -> None:
    await store.create_many("notes", [note("n1"), note("n2", tenant="tn_b"), note("n3")])
    assert ids((await store.query("notes", Query(scope="tn_a"))).items) == ["n1", "n3"]
    assert ids((await store.query("notes", Query(scope="tn_b"))).items) == ["n2"]
    assert ids((await store.query("notes", Query(scope=SYSTEM))).items) == ["n1", "n2", "n3"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Filter("rank", "eq", 2), ["d2"]),
        (Filter("rank", "ne", 2), ["d1", "d3", "d4", "d5"]),
        (Filter("rank", "lt", 2), ["d1"]),
        (Filter("rank", "lte", 2), ["d1", "d2"]),
        (Filter("rank", "gt", 2), ["d3"]),
        (Filter("rank", "gte", 2), ["d2", "d3"]),
        (Filter("rank", "in", [1, 3, 7]), ["d1", "d3"]),
        (Filter("rank", "in", [3, None]), ["d3", "d4", "d5"]),
        (Filter("rank", "in", []), []),
        (Filter("rank", "eq", None), ["d4", "d5"]),
        (Filter("rank", "ne", None), ["d1", "d2", "d3"]),
        (Filter("meta.group", "eq", "x"), ["d1", "d3"]),
        (Filter("meta.group", "ne", "x"), ["d2", "d4", "d5"]),
        (Filter("meta.group", "eq", None), ["d4", "d5"]),
        (Filter("flag", "eq", True), ["d2"]),
        (Filter("created_at", "gte", "2030-01-01T00:00:02Z"), ["d2", "d3"]),
        (Filter("id", "in", ["d2", "d5"]), ["d2", "d5"]),
    ],
)
async def test_filters(store: Store, condition: Filter, expected: list[str]) -> None:
    await store.create_many(
        "notes",
        [
            note("d1", rank=1, meta={"group": "x"}, created_at="2030-01-01T00:00:01Z"),
            note("d2", rank=2, meta={"group": "y"}, flag=True, created_at="2030-01-01T00:00:02Z"),
            note("d3", rank=3, meta={"group": "x"}, flag=False, created_at="2030-01-01T00:00:03Z"),
            note("d4", rank=None, meta={}),
            note("d5"),
            note("d6", tenant="tn_b", rank=2, meta={"group": "x"}),
        ],
    )
    page = await store.query("notes", Query(scope="tn_a", where=(condition,)))
    assert ids(page.items) == expected


async def test_filters_combine_with_and(store: Store) -> None:
    await store.create_many(
        "notes", [note("d1", rank=1, v="a"), note("d2", rank=2, v="a"), note("d3", rank=2)]
    )
    query = Query(scope="tn_a", where=(Filter("rank", "eq", 2), Filter("v", "eq", "a")))
    assert ids((await store.query("notes", query)).items) == ["d2"]


async def test_a_comparison_with_none_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.query("notes", Query(scope="tn_a", where=(Filter("rank", "lt", None),)))


async def all_pages(store: Store, query: Query) -> list[str]:
    seen: list[str] = []
    while True:
        page = await store.query("notes", query)
        assert len(page.items) <= query.limit
        seen += ids(page.items)
        if page.next_cursor is None:
            return seen
        query = Query(**{**_fields(query), "cursor": page.next_cursor})


def _fields(query: Query) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__slots__}


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("order_by", ["created_at", "rank", "id"])
async def test_pages_follow_each_other_without_gaps_or_repeats(
    store: Store, order_by: str, descending: bool
) -> None:
    docs = [
        note(
            f"n{i:02d}",
            created_at=None if i % 7 == 0 else f"2030-01-01T00:00:{i % 5:02d}Z",
            rank=None if i % 4 == 0 else (i * 3) % 10,
            odd=i % 2 == 1,
        )
        for i in range(23)
    ]
    await store.create_many("notes", [*docs, note("other", tenant="tn_b", rank=1)])

    def key(doc: dict[str, Any]) -> tuple[Any, ...]:
        value = doc[order_by]
        return (value is not None, value if value is not None else 0, doc["id"])

    expected = ids(sorted(docs, key=key, reverse=descending))
    query = Query(scope="tn_a", order_by=order_by, descending=descending, limit=4)
    assert await all_pages(store, query) == expected

    odd = Query(**{**_fields(query), "where": (Filter("odd", "eq", True),), "limit": 3})
    assert await all_pages(store, odd) == [i for i in expected if int(i[1:]) % 2 == 1]


async def test_the_last_full_page_has_no_cursor(store: Store) -> None:
    await store.create_many("notes", [note(f"n{i}") for i in range(4)])
    first = await store.query("notes", Query(scope="tn_a", limit=2))
    second = await store.query("notes", Query(scope="tn_a", limit=2, cursor=first.next_cursor))
    assert first.next_cursor is not None and second.next_cursor is None
    assert ids(second.items) == ["n2", "n3"]


async def test_an_empty_result_has_no_cursor(store: Store) -> None:
    page = await store.query("notes", Query(scope="tn_a"))
    assert page.items == [] and page.next_cursor is None


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10="])
async def test_a_foreign_cursor_is_refused(store: Store, cursor: str) -> None:
    with pytest.raises(ValueError):
        await store.query("notes", Query(scope="tn_a", cursor=cursor))


async def test_a_cursor_of_another_order_is_refused(store: Store) -> None:
    await store.create_many("notes", [note("n1"), note("n2")])
    page = await store.query("notes", Query(scope="tn_a", limit=1))
    with pytest.raises(ValueError):
        await store.query("notes", Query(scope="tn_a", order_by="rank", cursor=page.next_cursor))


@pytest.mark.parametrize("doc", [{"tenant_id": "tn_a"}, {"id": "n1"}, {"id": 1, "tenant_id": "t"}])
async def test_a_document_needs_a_string_id_and_tenant(store: Store, doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await store.create("notes", doc)
    with pytest.raises(ValueError):
        await store.upsert("notes", doc)
    with pytest.raises(ValueError):
        await store.create_many("notes", [note("ok"), doc])
    assert await store.read("notes", "tn_a", "ok") is None


async def test_an_unknown_container_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.create("nope", note("n1"))


# --- the embedded database itself ------------------------------------------------------


def test_the_database_file_is_opened_in_wal_mode_lazily(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "data" / "ocm.sqlite3")
    assert not (tmp_path / "data").exists()
    conn = db.connect()
    pragmas = [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS]
    assert pragmas == ["wal", 1, 5000]
    db.close()


async def test_an_in_memory_database_holds_documents(clock: FakeClock) -> None:
    db = SqliteDatabase(":memory:")
    store = SqliteDocumentStore(db, SPECS, clock)
    await store.create("notes", note("n1"))
    assert await store.read("notes", "tn_a", "n1") is not None
    db.close()


# --- every partition key layout (ContainerSpec.partition_key) ------------------------


@pytest.mark.parametrize("container", ["notes", "entries", "records"])
async def test_each_partition_layout_keeps_tenants_apart(store: Store, container: str) -> None:
    """notes: by tenant; entries: by id alone; records: by tenant then id."""
    created = await store.create(container, note("d1", rank=1, kind="k"))
    assert await store.read(container, "tn_a", "d1") == created
    assert await store.read(container, SYSTEM, "d1") == created
    assert await store.read(container, "tn_b", "d1") is None
    with pytest.raises(NotFound):
        await store.replace(container, note("d1", tenant="tn_b", rank=9))
    with pytest.raises(NotFound):
        await store.patch(container, "tn_b", "d1", {"rank": 9})
    assert await store.delete(container, "tn_b", "d1") is False
    assert await store.patch_many(container, [("tn_b", "d1", {"rank": 9}, None)]) == 0
    assert (await store.query(container, Query(scope="tn_b"))).items == []

    patched = await store.patch(container, "tn_a", "d1", {"rank": 2}, etag=created["_etag"])
    with pytest.raises(PreconditionFailed):
        await store.patch(container, "tn_a", "d1", {"rank": 3}, etag=created["_etag"])
    replaced = await store.replace(container, {**patched, "rank": 3}, etag=patched["_etag"])
    assert (await store.read(container, "tn_a", "d1")) == replaced
    assert ids((await store.query(container, Query(scope="tn_a"))).items) == ["d1"]
    assert ids((await store.query(container, Query(scope=SYSTEM))).items) == ["d1"]
    assert await store.delete(container, "tn_a", "d1") is True
    assert await store.read(container, SYSTEM, "d1") is None


@pytest.mark.parametrize(
    "query",
    [
        Query(scope="tn_a", where=(Filter("unindexed", "eq", 1),)),
        Query(scope="tn_a", order_by="meta.group"),  # indexed, but no ordering declared
    ],
)
async def test_a_query_no_index_serves_is_refused(store: Store, query: Query) -> None:
    with pytest.raises(ValueError, match="index"):
        await store.query("notes", query)


# --- counters --------------------------------------------------------------------------


async def test_increment_creates_then_adds_atomically(store: Store) -> None:
    assert await store.increment("records", "tn_a", "c1", "n", 3, ttl=60) == 3
    results = await asyncio.gather(
        *(store.increment("records", "tn_a", "c1", "n", 1, ttl=60) for _ in range(20))
    )
    assert sorted(results) == list(range(4, 24))  # every add seen exactly once
    assert (await store.read("records", "tn_a", "c1"))["n"] == 23  # type: ignore[index]
    assert await store.increment("records", "tn_b", "c2", "n", 1, ttl=60) == 1


@pytest.mark.needs("clock")
async def test_an_expired_counter_starts_again(store: Store, clock: FakeClock) -> None:
    await store.increment("records", "tn_a", "c1", "n", 5, ttl=10)
    clock.advance(10)  # the ttl has passed (since creation, and since the last add)
    assert await store.increment("records", "tn_a", "c1", "n", 1, ttl=10) == 1
