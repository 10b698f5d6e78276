"""Document semantics every store shares: field names, patch paths, TTL, page cursors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.domain.models import Document
from shared.ports import (
    MAX_TRANSACTION_WRITES,
    ContainerSpec,
    InvalidCursor,
    Write,
    partition_of,
)

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


def check_partition(spec: ContainerSpec, doc: Mapping[str, Any]) -> None:
    """In a container keyed by ``partition``, a document carries its id's partition
    (``partition_of``) as its ``partition`` field: Cosmos DB keys it by that field."""
    if spec.partition_key[-1] != "partition":
        return
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or doc.get("partition") != partition_of(doc_id):
        raise ValueError(f"{spec.name}: a document's partition field must be its id's partition")


def transaction_key(spec: ContainerSpec, writes: Sequence[Write]) -> tuple[str, str | None]:
    """The one logical partition ``writes`` fall in: the tenant and, where the
    container is keyed by it, the partition. ValueError for writes that span more,
    none at all or more than a transaction takes, or the same document twice."""
    if not writes or len(writes) > MAX_TRANSACTION_WRITES:
        raise ValueError(f"a transaction takes 1 to {MAX_TRANSACTION_WRITES} writes")
    if len(writes) > 1 and spec.partition_key not in (("tenant_id",), ("tenant_id", "partition")):
        raise ValueError(f"{spec.name} keeps each document in a partition of its own")
    keys = set()
    for write in writes:
        check_partition(spec, write.doc)
        tenant_id, doc_id = write.doc.get("tenant_id"), write.doc.get("id")
        if not isinstance(tenant_id, str) or not isinstance(doc_id, str):
            raise ValueError("a document needs a string id and tenant_id")
        if write.kind not in ("create", "replace", "upsert"):
            raise ValueError(f"unknown write {write.kind!r}")
        keys.add(
            (tenant_id, partition_of(doc_id) if spec.partition_key[-1] == "partition" else None)
        )
    if len(keys) != 1:
        raise ValueError("a transaction stays inside one tenant's partition")
    if len({w.doc["id"] for w in writes}) != len(writes):
        raise ValueError("a transaction writes each document once")
    return keys.pop()
