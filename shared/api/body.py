"""Reading JSON bodies by hand where the route validates item by item."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from shared.domain.errors import OcmError


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
