"""Document semantics every store shares: field names, patch paths, TTL, page cursors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson

from shared.domain.models import Document
from shared.ports import InvalidCursor

_FIXED_KEYS = frozenset({"id", "tenant_id", "_etag"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: str) -> str:
    """Names end up inside SQL text, so only identifiers are accepted."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid name {name!r}")
    return name


def apply_changes(doc: Document, changes: Mapping[str, Any]) -> None:
    """Set top-level or dotted fields in place, creating intermediate objects."""
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        if (parents[0] if parents else leaf) in _FIXED_KEYS:
            raise ValueError(f"{path!r} cannot be patched")
        node = doc
        for key in parents:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ValueError(f"{path!r} crosses a field that is not an object")
        node[leaf] = value


def expiry(doc: Document, now: float) -> float | None:
    """When a document written at ``now`` (epoch seconds) expires, from its ``ttl``."""
    ttl = doc.get("ttl")
    if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0:
        return now + ttl
    return None


def encode_cursor(order_by: str, value: Any, doc_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([order_by, value, doc_id])).decode()


def decode_cursor(cursor: str, order_by: str) -> tuple[Any, str]:
    """The (order value, id) a page ended on; ValueError if it is not our cursor."""
    try:
        field, value, doc_id = orjson.loads(base64.urlsafe_b64decode(cursor))
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc
    if (
        field != order_by
        or not isinstance(doc_id, str)
        or not isinstance(value, str | int | float | bool | None)
    ):
        raise InvalidCursor("cursor does not belong to this query")
    return value, doc_id
