"""Ids are ULIDs behind a type prefix: valid, time-ordered, unique."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ulid import ULID

from shared.domain.ids import new_api_key, new_id, split_api_key


def test_an_id_is_a_valid_ulid_carrying_its_creation_time() -> None:
    at = datetime(2026, 11, 28, 10, 0, 0, 123_000, tzinfo=UTC)
    value = new_id("msg", at)
    assert value.startswith("msg_") and len(value) == 30
    parsed = ULID.from_str(value.removeprefix("msg_").upper())
    assert parsed.datetime == at


def test_ids_sort_by_creation_time_and_never_repeat() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_id("msg", start + timedelta(milliseconds=i)) for i in range(0, 5000, 7)]
    assert ids == sorted(ids)
    same_moment = [new_id("msg", start) for _ in range(10_000)]
    assert len(set(same_moment)) == 10_000
    assert same_moment == sorted(same_moment)  # made in one millisecond: in order
    assert all(ULID.from_str(i.removeprefix("msg_").upper()).datetime == start for i in same_moment)


def test_an_api_key_splits_into_its_public_prefix_and_secret() -> None:
    key, prefix, digest = new_api_key()
    assert split_api_key(key) == (prefix, key.split("_", 2)[2])
    assert len(digest) == 64
    assert split_api_key("ocm_short_x") is None
