"""JSON bodies: read once at the request boundary, where a key named twice in one
object is refused; and by hand where the route validates item by item."""

from __future__ import annotations

import json
from typing import Any

import jiter
import orjson
from fastapi import Request

from shared.domain.errors import OcmError

PARSED = "ocm.json"
"""The scope key under which the boundary leaves a body it has read (``read_json``
takes it from there instead of parsing again)."""


class DuplicateKey(ValueError):
    """A JSON object names a key twice. Parsers disagree on which one wins (the first,
    the last), so a proxy and OCM could read different requests: OCM takes neither."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        raise DuplicateKey


_DUPLICATES = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)

_NUMBER_PARTS = bytes.maketrans(b"0123456789+-Ee", b"000000000000" + b"11")


def _read_otherwise(raw: bytes) -> bool:
    """Whether ``raw`` may hold a number jiter and orjson read differently: an integer
    past 64 bits (an int for one, a float for the other: 19 digits or more) or an
    exponent that overflows (inf or an error: three digits). A body holding one, or
    what looks like one inside a string, is parsed again by orjson, as every body was
    before. Bytes are mapped (digits and signs to 0, e to 1) and searched, which is
    ten times cheaper than a regular expression; what else maps alike (``code-123``)
    only costs that second parse."""
    mapped = raw.translate(_NUMBER_PARTS)
    return b"1000" in mapped or b"0000000000000000000" in mapped


def read_checked(raw: bytes) -> Any:
    """A body that looks like JSON, parsed (or None: not JSON-looking, not valid for
    jiter, or with a number read otherwise by orjson — the route parses it then).
    Raises ``DuplicateKey``, whatever the Content-Type says (the send routes read
    theirs by hand).

    jiter refuses duplicates as it parses (one pass in Rust); for what it does not
    accept (deeper than 200 levels, not JSON at all) the standard library's parser
    looks for them instead, so a body jiter cannot read is still checked."""
    if raw[:1024].lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        parsed = jiter.from_json(
            raw, catch_duplicate_keys=True, allow_inf_nan=False, cache_mode="keys"
        )
    except ValueError as exc:
        if str(exc).startswith("Detected duplicate key"):
            raise DuplicateKey from None
        _look_for_duplicates(raw)
        return None
    return None if _read_otherwise(raw) else parsed


def _look_for_duplicates(raw: bytes) -> None:
    try:
        _DUPLICATES.decode(raw.decode())
    except DuplicateKey:
        raise
    except (ValueError, RecursionError):
        return  # not JSON: the route says so


async def read_json(request: Request) -> tuple[Any, int]:
    """The parsed body and its size in bytes; 400 MALFORMED_JSON if it is not JSON."""
    raw = await request.body()
    parsed = request.scope.get(PARSED)
    if parsed is not None:
        return parsed, len(raw)
    try:
        return orjson.loads(raw), len(raw)
    except orjson.JSONDecodeError:
        raise OcmError(
            "The request body is not valid JSON", code="MALFORMED_JSON", status=400
        ) from None


def json_body(schema_ref: str, description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}
            },
        }
    }
