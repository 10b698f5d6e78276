"""The boundary reads a JSON body once (jiter) and hands it to the route, refusing
duplicate keys as it goes. What it hands over must be exactly what the route's own
parser (orjson) would have read, or nothing (the route then parses as before)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.api.body import DuplicateKey, read_checked

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
numbers = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?\Z")


def same(one: Any, other: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 here)."""
    if type(one) is not type(other):
        return False
    if isinstance(one, dict):
        return one.keys() == other.keys() and all(same(one[k], other[k]) for k in one)
    if isinstance(one, list):
        return len(one) == len(other) and all(map(same, one, other))
    return bool(one == other)


@settings(max_examples=400, deadline=None)
@given(value=values, ascii_only=st.booleans())
def test_what_the_boundary_hands_over_is_what_orjson_reads(value: Any, ascii_only: bool) -> None:
    raw = json.dumps({"v": value}, ensure_ascii=ascii_only).encode()
    parsed = read_checked(raw)
    assert parsed is None or same(parsed, orjson.loads(raw))


@settings(max_examples=400, deadline=None)
@given(number=numbers)
def test_numbers_are_handed_over_only_when_orjson_reads_them_alike(number: str) -> None:
    raw = f'{{"n": {number}}}'.encode()
    parsed = read_checked(raw)
    if parsed is not None:
        assert same(parsed, orjson.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"n": 18446744073709551616}',  # orjson: a float; jiter: an int
        b'{"n": -9223372036854775809}',
        b'{"n": 1e999}',  # orjson refuses; jiter: inf
        b'{"n": "\\ud800"}',  # a lone surrogate: both refuse
        b'{"n": NaN}',
        b"not json",
        b'{"n": 1',
    ],
)
def test_bodies_read_otherwise_or_not_at_all_are_left_to_the_route(raw: bytes) -> None:
    assert read_checked(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "\\u0061": 2}',  # the same key, escaped
        b'[{"x": {"b": 1, "b": 1}}]',
        b'{"a": 1, "a": 2, "n": 1e999}',  # jiter stops at the duplicate
        b"[" * 300 + b'{"a": 1, "a": 2}' + b"]" * 300,  # deeper than jiter goes
        b'{"a": 1, "a": 2, "broken": }',  # not JSON after the duplicate
    ],
)
def test_a_key_named_twice_is_found_wherever_it_is(raw: bytes) -> None:
    with pytest.raises(DuplicateKey):
        read_checked(raw)


def test_the_same_key_in_different_objects_is_no_duplicate() -> None:
    assert read_checked(b'[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]') == [
        {"a": 1},
        {"a": 2},
        {"b": {"a": 3}},
    ]
