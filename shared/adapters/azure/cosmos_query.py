"""The port's queries in Cosmos SQL: filters, keyset pages after a cursor, and the
SELECT that reads them.

SQL text is only ever built from constants and names check_name() accepted; every
value is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.cosmos.exceptions import CosmosHttpResponseError

from shared.adapters.azure.cosmos_container import Container, field_value, to_document, translated
from shared.adapters.documents import check_name, decode_cursor, encode_cursor
from shared.domain.models import Document
from shared.ports import SYSTEM, Filter, Page, Query

_COMPARISONS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


async def query_page(c: Container, query: Query) -> Page:
    """One page of ``query`` (its limit checked by the caller), and the cursor of the
    next if there is one."""
    c.spec.check_query(query)
    params: dict[str, Any] = {}
    where: list[str] = []
    partition: Any = None
    if query.scope is not SYSTEM:
        where.append("c.tenant_id = @tenant")
        params["@tenant"] = query.scope
        if c.spec.partition_key[0] == "tenant_id":
            # A prefix of a hierarchical key keeps the query in the tenant's partitions.
            multi = len(c.spec.partition_key) > 1
            partition = [query.scope] if multi else query.scope
    for i, f in enumerate(query.where):
        where.append(_condition_sql(f, f"@p{i}", params))
    branches: list[tuple[str, dict[str, Any]]] = [("true", {})]
    if query.cursor is not None:
        value, last_id = decode_cursor(query.cursor, query.order_by)
        branches = _after_cursor(_field(query.order_by), query.descending, value, last_id)
    found: list[Document] = []
    for sql, values in branches:
        if len(found) > query.limit:
            break
        found += await select(
            c,
            " AND ".join([*where, sql]),
            {**params, **values},
            partition,
            query.limit + 1 - len(found),
            query.order_by,
            query.descending,
        )
    more = len(found) > query.limit
    found = found[: query.limit]
    cursor = None
    if more:
        last = found[-1]
        cursor = encode_cursor(query.order_by, field_value(last, query.order_by), last["id"])
    return Page(found, cursor)


async def select(
    c: Container,
    where: str,
    params: Mapping[str, Any],
    partition: Any,
    top: int,
    order_by: str,
    descending: bool,
) -> list[Document]:
    """The first ``top`` documents that match ``where``, in (order_by, id) order."""
    direction = "DESC" if descending else "ASC"
    order = f"c.id {direction}"
    if order_by != "id":
        order = f"{_field(order_by)} {direction}, {order}"
    sql = f"SELECT TOP {int(top)} * FROM c WHERE {where} ORDER BY {order}"  # noqa: S608
    options: dict[str, Any] = {"max_item_count": min(top, 1000)}
    if partition is not None:
        options["partition_key"] = partition
    items = c.client.query_items(
        sql,
        parameters=[{"name": k, "value": v} for k, v in params.items()],
        response_hook=c.hook("query"),
        **options,
    )
    found: list[Document] = []
    try:
        async for item in items:
            found.append(to_document(item))
            if len(found) >= top:
                break
    except CosmosHttpResponseError as exc:
        raise translated(exc) from exc
    return found


def _field(name: str) -> str:
    parts = [check_name(p) for p in name.split(".")]
    return "c" + "".join(f'["{p}"]' for p in parts)


def _is_null(expr: str) -> str:
    return f"(NOT IS_DEFINED({expr}) OR IS_NULL({expr}))"


def _condition_sql(f: Filter, name: str, params: dict[str, Any]) -> str:
    """One filter as Cosmos SQL; a missing field counts as null, as in the other
    stores, and ``ne`` is exactly the negation of ``eq``."""
    expr = _field(f.field)
    if f.op in ("eq", "ne"):
        if f.value is None:
            sql = _is_null(expr)
        else:
            params[name] = f.value
            sql = f"(IS_DEFINED({expr}) AND {expr} = {name})"
        return sql if f.op == "eq" else f"NOT {sql}"
    if f.op == "in":
        values = [v for v in f.value if v is not None]
        parts = []
        if values:
            names = [f"{name}_{i}" for i in range(len(values))]
            params.update(zip(names, values, strict=True))
            parts.append(f"{expr} IN ({', '.join(names)})")
        if len(values) < len(f.value):
            parts.append(_is_null(expr))
        return f"({' OR '.join(parts) or 'false'})"
    if f.value is None:
        raise ValueError(f"{f.op} needs a value")
    params[name] = f.value
    return f"{expr} {_COMPARISONS[f.op]} {name}"


def _after_cursor(
    expr: str, descending: bool, value: Any, doc_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """The documents after a cursor, as branches read in turn (null sorts first)."""
    null, set_ = _is_null(expr), f"NOT {_is_null(expr)}"
    after_id = {"@after_id": doc_id}
    if value is None:
        if descending:
            return [(f"{null} AND c.id < @after_id", after_id)]
        return [(f"{null} AND c.id > @after_id", after_id), (set_, {})]
    cursor = {"@after_value": value, **after_id}
    if descending:
        return [
            (
                f"({expr} < @after_value OR ({expr} = @after_value AND c.id < @after_id))",
                cursor,
            ),
            (null, {}),
        ]
    return [(f"({expr} > @after_value OR ({expr} = @after_value AND c.id > @after_id))", cursor)]
