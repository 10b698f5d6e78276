"""The metered operations of a template: every filter and test, loops, ``~``,
comparisons and what ``{{ … }}`` prints each spend from the render's budget and check
what they would build first.

``Metering`` rewrites a parsed template so its loops, ``~`` and comparisons go through
the ``ROUTED`` filters; the sandbox registers those and wraps every filter and test in
``metered_filter``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from types import GeneratorType
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context, markup_join, str_join
from jinja2.utils import _PassArg, pass_context
from jinja2.visitor import NodeTransformer

from shared.domain.template_budget import elements, sized, spend, weight, within
from shared.domain.template_sizes import filter_size

SLOW_FILTERS = frozenset(
    {"batch", "dictsort", "groupby", "map", "max", "min", "pprint", "reject", "rejectattr"}
    | {"select", "selectattr", "slice", "sort", "sum", "title", "unique", "urlize"}
    | {"wordcount", "wordwrap"}
)
"""Filters that cost about a microsecond per character or item (measured)."""
ITEM_FILTERS = frozenset(
    {"attr", "batch", "count", "d", "default", "dictsort", "first", "groupby", "items"}
    | {"last", "length", "list", "map", "max", "min", "random", "reject", "rejectattr"}
    | {"reverse", "select", "selectattr", "slice", "sort", "sum", "unique"}
)
"""Filters that go through a list's items without printing them (the others print it)."""


def metered_filter(name: str, func: Callable[..., Any], *, by_item: bool) -> Callable[..., Any]:
    """A filter (or test) that spends what it goes through and checks what it would
    build first; as a context filter, Jinja never runs it at compile time."""
    passes = _PassArg.from_obj(func)
    cost = 16 if name in SLOW_FILTERS else 1

    @pass_context
    def metered(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, GeneratorType):
            value = list(value)
        spend(elements(value) if by_item else weight(value), cost)
        within(filter_size(name, value, args, kwargs))
        first: tuple[Any, ...] = ()
        if passes is _PassArg.context:
            first = (context,)
        elif passes is _PassArg.eval_context:
            first = (context.eval_ctx,)
        elif passes is _PassArg.environment:
            first = (context.environment,)
        return sized(func(*first, value, *args, **kwargs))

    return metered


@pass_context
def _each(context: Context, iterable: Any) -> Iterator[Any]:
    """A loop's iterable, each item a unit of work."""
    for item in iterable:
        spend()
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """``a ~ b``, checked before it is joined."""
    spend(within(sum(weight(p) for p in parts)))
    joined: str = markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)
    return joined


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


@pass_context
def _compare(context: Context, operands: list[Any], ops: tuple[str, ...]) -> bool:
    """``a == b``, ``a in b``, ``a < b < c``: as costly as what they compare."""
    spend(sum(elements(o) for o in operands))
    return all(
        _COMPARISONS[op](a, b) for op, a, b in zip(ops, operands, operands[1:], strict=False)
    )


def finalize(value: Any) -> Any:
    """What ``{{ … }}`` prints: None as nothing, and never a value too big to print."""
    if value is None:
        return ""
    spend(within(weight(value)))
    return value


_EACH, _CONCAT, _COMPARE = "ocm.each", "ocm.concat", "ocm.compare"  # no template can write them
ROUTED: dict[str, Callable[..., Any]] = {_EACH: _each, _CONCAT: _concat, _COMPARE: _compare}
"""The filters ``Metering`` routes loops, ``~`` and comparisons through, by name."""


class Metering(NodeTransformer):
    """Routes loops, ``~`` and comparisons through the meter (_each, _concat, _compare)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, _EACH)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), _CONCAT)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        operands = nodes.List([node.expr, *(o.expr for o in node.ops)], lineno=node.lineno)
        ops = nodes.Const(tuple(o.op for o in node.ops), lineno=node.lineno)
        return _filter(operands, _COMPARE, ops)


def _filter(expr: nodes.Node, name: str, *args: nodes.Node) -> nodes.Filter:
    return nodes.Filter(expr, name, list(args), [], None, None, lineno=expr.lineno)
