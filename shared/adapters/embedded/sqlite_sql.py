"""SQL text of the document store: field expressions, filters, keyset ranges, indexes.

SQL text is only ever built from constants and names check_name() accepted; every
value is a bound parameter.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from shared.adapters.documents import check_name
from shared.ports import SYSTEM, ContainerSpec, Filter, Query

_COLUMNS = frozenset({"id", "tenant_id"})
_COMPARISONS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


@lru_cache(maxsize=512)
def field_sql(field: str) -> str:
    """The SQL expression of a top-level or dotted field (indexes match it verbatim)."""
    if field in _COLUMNS:
        return field
    for part in field.split("."):
        check_name(part)
    return f"json_extract(body, '$.{field}')"


def where_sql(container: str, query: Query, now: float) -> tuple[list[str], list[Any]]:
    """The conditions of a query (its container, its tenant unless SYSTEM, the live
    documents only, its filters) and their parameters; ``container`` is a checked name."""
    where = [f"container = '{container}'", "(expires_at IS NULL OR expires_at > ?)"]
    params: list[Any] = [now]
    if query.scope is not SYSTEM:
        where.append("tenant_id = ?")
        params.append(query.scope)
    for f in query.where:
        sql, values = condition_sql(f)
        where.append(sql)
        params.extend(values)
    return where, params


def condition_sql(f: Filter) -> tuple[str, list[Any]]:
    """A filter as SQL and its parameters; ``ne`` is exactly the negation of ``eq``."""
    expr = field_sql(f.field)
    if f.op == "eq":
        return (f"{expr} IS NULL", []) if f.value is None else (f"{expr} = ?", [f.value])
    if f.op == "ne":
        return (f"{expr} IS NOT NULL", []) if f.value is None else (f"{expr} IS NOT ?", [f.value])
    if f.op == "in":
        values = [v for v in f.value if v is not None]
        parts = [f"{expr} IN ({', '.join('?' * len(values))})"] if values else []
        if len(values) < len(f.value):
            parts.append(f"{expr} IS NULL")
        return f"({' OR '.join(parts) or '0'})", values
    if f.value is None:
        raise ValueError(f"{f.op} needs a value")
    return f"{expr} {_COMPARISONS[f.op]} ?", [f.value]


def after_cursor_sql(
    expr: str, descending: bool, value: Any, doc_id: str
) -> list[tuple[str, list[Any]]]:
    """The rows after a cursor, as branches read in turn, each a range SQLite can seek.

    NULL sorts first, so the rows with no order value form a branch of their own.
    """
    if value is None:
        if descending:
            return [(f"{expr} IS NULL AND id < ?", [doc_id])]
        return [(f"{expr} IS NULL AND id > ?", [doc_id]), (f"{expr} IS NOT NULL", [])]
    if descending:
        return [
            (f"{expr} <= ? AND ({expr}, id) < (?, ?)", [value, value, doc_id]),
            (f"{expr} IS NULL", []),
        ]
    return [(f"{expr} >= ? AND ({expr}, id) > (?, ?)", [value, value, doc_id])]


def index_ddl(spec: ContainerSpec) -> list[str]:
    """Partial indexes for one container: (tenant_id, field, id), and the unique ones."""
    name = check_name(spec.name)
    ddl = []
    for field in spec.indexed:
        if field not in _COLUMNS:
            ddl.append(
                f"CREATE INDEX IF NOT EXISTS ix_{name}__{field.replace('.', '__')} "
                f"ON documents (tenant_id, {field_sql(field)}, id) WHERE container = '{name}'"
            )
    for field in spec.sparse:
        expr = field_sql(field)
        ddl.append(
            f"CREATE INDEX IF NOT EXISTS px_{name}__{field.replace('.', '__')} "
            f"ON documents (tenant_id, {expr}, id) "
            f"WHERE container = '{name}' AND {expr} IS NOT NULL"
        )
    for field in spec.swept:
        expr = field_sql(field)
        ddl.append(
            f"CREATE INDEX IF NOT EXISTS sx_{name}__{field.replace('.', '__')} "
            f"ON documents ({expr}, id) WHERE container = '{name}' AND {expr} IS NOT NULL"
        )
    for field in spec.unique:
        if field not in _COLUMNS:
            expr = field_sql(field)
            ddl.append(
                f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{name}__{field.replace('.', '__')} "
                f"ON documents (tenant_id, {expr}) "
                f"WHERE container = '{name}' AND {expr} IS NOT NULL"
            )
    return ddl
