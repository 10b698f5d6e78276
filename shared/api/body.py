"""Reading JSON bodies by hand where the route validates item by item."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request

from shared.domain.errors import OcmError


class _Duplicate(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        raise _Duplicate


_DUPLICATES = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


def has_duplicate_keys(raw: bytes) -> bool:
    """Whether a JSON object in ``raw`` names a key twice. Parsers disagree on which
    one wins (the first, the last), so a proxy and OCM could read different requests;
    OCM refuses them. Text that is not JSON has none here: the route says what it is."""
    try:
        _DUPLICATES.decode(raw.decode())
    except _Duplicate:
        return True
    except (ValueError, RecursionError):
        return False
    return False


async def read_json(request: Request) -> tuple[Any, int]:
    """The parsed body and its size in bytes; 400 MALFORMED_JSON if it is not JSON."""
    raw = await request.body()
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
