"""The bounded sandbox message templates compile and render in.

Rendering never trusts a template's source: it runs in Jinja's immutable sandbox with
``StrictUndefined``, and OCM bounds what a render may cost, because one tenant's
template runs in the process that serves all:

- nothing a template says runs when it is compiled (Jinja folds constant expressions
  at compile time; intercepted operators and context filters are never folded);
- only ``range``, ``dict``, ``cycler``, ``joiner``, ``loop.cycle``/``loop.changed`` and
  string and object methods that cannot grow a value may be called; the rest is
  done with filters, which are metered;
- each operation that builds a value is checked before it builds it: no value grows
  past ``MAX_VALUE`` characters;
- a render has ``MAX_WORK`` units of work: a loop iteration, call, filter, test,
  comparison or operator costs one, and one more per 64 characters or items it goes
  through (16 for the filters that work item by item in Python, ``SLOW_FILTERS``);
- output is streamed and each field capped; macros, call and filter blocks, block
  assignments and recursive loops (whose output Jinja buffers unseen) are refused.

``compiled`` compiles a source (refusing what the sandbox could not bound),
``budget`` opens one render's budget and ``render_source`` renders a source within it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from types import GeneratorType
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, _PassArg, pass_context
from jinja2.visitor import NodeTransformer

MAX_VALUE = 262_144
"""The most characters any value built during a render may have (a message's size)."""
MAX_WORK = 50_000
"""The units of work one render (all fields of a message) may spend."""
MAX_DIGITS = 4300
"""The most digits a number may grow to (Python prints no longer ones)."""


@dataclass
class _Meter:
    """What one render has spent; weights of containers are remembered by identity."""

    work: int = 0
    weights: dict[int, tuple[object, int]] = field(default_factory=dict)


_METER: ContextVar[_Meter | None] = ContextVar("ocm_template_meter", default=None)


def _spend(elements: int = 0, cost: int = 1) -> None:
    """Count an operation going through ``elements`` characters or items."""
    meter = _METER.get()
    if meter is not None:
        meter.work += 1 + elements * cost // 64
        if meter.work > MAX_WORK:
            raise SecurityError("the template does too much work")


def _elements(value: Any) -> int:
    """How many characters or items an operation on ``value`` goes through."""
    sized = isinstance(value, str | bytes | Mapping | list | tuple | set | frozenset | range)
    return len(value) if sized else 1


def _weight(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` prints as; counting stops past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return 8
    meter = _METER.get()
    known = meter.weights.get(id(value)) if meter else None
    if known is not None:
        return known[1]
    total = 2 + 2 * len(value)
    for item in chain.from_iterable(value.items()) if isinstance(value, Mapping) else value:
        if total > limit:
            return total  # partial, so not remembered
        total += _weight(item, limit - total)
    if meter is not None:
        meter.weights[id(value)] = (value, total)
    return total


def _within(size: int) -> int:
    """Refuse to build a value of more than MAX_VALUE characters."""
    if size > MAX_VALUE:
        raise SecurityError(f"a value would grow past {MAX_VALUE} characters")
    return size


def _sized(value: Any) -> Any:
    if not isinstance(value, GeneratorType):
        _within(_weight(value))
    return value


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|[1-9]\d*)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")


def _formatted_size(fmt: Any, args: Any) -> int:
    """The most ``fmt % args`` can print: widths and precisions count, ``*`` is refused."""
    if not isinstance(fmt, str):
        return _weight(fmt)
    values = (
        args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    )
    widest = max((_weight(v) for v in values), default=0)
    size = len(fmt)
    for width, precision in _PERCENT.findall(fmt):
        if "*" in (width, precision):
            raise SecurityError("a width or precision taken from the arguments (*)")
        size += max(_number(width), _number(precision), widest)
    return size


def _number(digits: str) -> int:
    """A width or precision written in a format (absurdly long ones count as too big)."""
    if not digits:
        return 0
    return int(digits) if len(digits) < 10 else MAX_VALUE + 1


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _filter_size(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """The most a filter can build from its arguments (most build no more than they get)."""
    size = _weight(value)
    if name == "format":
        return _formatted_size(value, kwargs or args)
    if name == "join":
        count = len(value) if isinstance(value, Sized) else size
        return size + _weight(_arg(args, kwargs, 0, "d") or "") * count
    if name == "replace" and isinstance(value, str):
        old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
        if isinstance(old, str) and isinstance(new, str):
            return size + len(new) * (value.count(old) if old else size + 1)
    if name == "indent" and isinstance(value, str):
        width = _arg(args, kwargs, 0, "width")
        indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
        return size + indent * (value.count("\n") + 1)
    sizing = {"center": "width", "batch": "linecount", "slice": "slices", "tojson": "indent"}
    amount = _arg(args, kwargs, 0, sizing[name]) if name in sizing else None
    if isinstance(amount, int):
        return size * (amount + 1) if name == "tojson" else size + amount
    return size


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


def _metered(name: str, func: Callable[..., Any], *, by_item: bool) -> Callable[..., Any]:
    """A filter (or test) that spends what it goes through and checks what it would
    build first; as a context filter, Jinja never runs it at compile time."""
    passes = _PassArg.from_obj(func)
    cost = 16 if name in SLOW_FILTERS else 1

    @pass_context
    def metered(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, GeneratorType):
            value = list(value)
        _spend(_elements(value) if by_item else _weight(value), cost)
        _within(_filter_size(name, value, args, kwargs))
        first: tuple[Any, ...] = ()
        if passes is _PassArg.context:
            first = (context,)
        elif passes is _PassArg.eval_context:
            first = (context.eval_ctx,)
        elif passes is _PassArg.environment:
            first = (context.environment,)
        return _sized(func(*first, value, *args, **kwargs))

    return metered


@pass_context
def _each(context: Context, iterable: Any) -> Iterator[Any]:
    """A loop's iterable, each item a unit of work."""
    for item in iterable:
        _spend()
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """``a ~ b``, checked before it is joined."""
    _spend(_within(sum(_weight(p) for p in parts)))
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
    _spend(sum(_elements(o) for o in operands))
    return all(
        _COMPARISONS[op](a, b) for op, a, b in zip(ops, operands, operands[1:], strict=False)
    )


def _finalize(value: Any) -> Any:
    """What ``{{ … }}`` prints: None as nothing, and never a value too big to print."""
    if value is None:
        return ""
    _spend(_within(_weight(value)))
    return value


_EACH, _CONCAT, _COMPARE = "ocm.each", "ocm.concat", "ocm.compare"  # no template can write them
_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (
        str,
        frozenset(
            {"capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha"}
            | {"isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper"}
            | {"lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind"}
            | {"rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip"}
            | {"swapcase", "title", "upper"}
        ),
    ),
    (dict, frozenset({"get", "items", "keys", "values"})),
    (LoopContext, frozenset({"cycle", "changed"})),
    (Cycler, frozenset({"next", "reset"})),
)
_METHOD_NAMES = frozenset().union(*(names for _, names in _METHODS))
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.AssignBlock: "block assignments ({% set %}…{% endset %})",
    nodes.Block: "blocks",
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
}


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            autoescape=html,
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        for name in ("lipsum", "namespace"):  # megabytes of text; state that escapes loops
            del self.globals[name]
        self.filters = {
            name: _metered(name, f, by_item=name in ITEM_FILTERS)
            for name, f in self.filters.items()
        }
        self.filters.update({_EACH: _each, _CONCAT: _concat, _COMPARE: _compare})
        tests = cast(dict[str, Callable[..., Any]], self.tests)  # typed as "function"
        self.tests = {name: _metered(name, test, by_item=True) for name, test in tests.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend(_within(_binop_size(operator, left, right)))
        return _sized(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``x[i]``; a slice builds a copy, so it is measured."""
        item = super().getitem(obj, argument)
        if isinstance(argument, slice):
            _spend(_elements(item))
            _sized(item)
        return item

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        allowed = (
            any(__obj is f for f in __self.globals.values())
            or isinstance(__obj, Joiner)
            or any(isinstance(owner, kind) and name in names for kind, names in _METHODS)
        )
        if not allowed:
            raise SecurityError(f"{name or type(__obj).__name__}() cannot be called; use filters")
        _spend(_elements(owner))
        return _sized(super().call(__context, __obj, *args, **kwargs))


def _binop_size(op: str, left: Any, right: Any) -> int:
    """The most an intercepted operator (+, *, **, %) can build; numbers stay printable."""
    if op == "+":
        return _weight(left) + _weight(right)
    if op in ("*", "**") and isinstance(left, int) and isinstance(right, int):
        if op == "*":
            bits = left.bit_length() + right.bit_length()
        else:
            bits = left.bit_length() * max(right, 0)
        if bits // 3 > MAX_DIGITS:
            raise SecurityError(f"a number would grow past {MAX_DIGITS} digits")
    elif op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                return _weight(seq) * times
    if op == "%" and isinstance(left, str):
        return _formatted_size(left, right)
    return 0


class _Metering(NodeTransformer):
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


def _refuse_unbounded(ast: nodes.Template) -> None:
    """What the sandbox could not bound, refused when the template is kept."""
    for node in ast.find_all(nodes.Stmt):
        what = _REFUSED.get(type(node))
        if isinstance(node, nodes.For) and node.recursive:
            what = "recursive loops"
        if what:
            raise TemplateSyntaxError(f"{what} are not supported in message templates", node.lineno)
    for expr in ast.find_all((nodes.Getattr, nodes.Call)):
        if isinstance(expr, nodes.Getattr) and expr.attr.startswith("_"):
            raise TemplateSyntaxError(f"{expr.attr!r} is not accessible", expr.lineno)
        call = expr.node if isinstance(expr, nodes.Call) else None
        if isinstance(call, nodes.Getattr) and call.attr not in _METHOD_NAMES:
            raise TemplateSyntaxError(
                f"{call.attr}() cannot be called in a template; use a filter instead",
                expr.lineno,
            )


# ---------------------------------------------------------------------------
# Compiling and rendering
# ---------------------------------------------------------------------------


ENVIRONMENTS = {False: _Sandbox(html=False), True: _Sandbox(html=True)}
"""The sandboxes, by whether a source is HTML (and so autoescaped)."""


@lru_cache(maxsize=128)
def compiled(source: str, html: bool) -> Template:
    """A source compiled for rendering (kept by source: a batch compiles it once)."""
    environment = ENVIRONMENTS[html]
    ast = environment.parse(source)
    _refuse_unbounded(ast)
    metered = _Metering().visit(ast)
    assert isinstance(metered, nodes.Template)
    metered.set_environment(environment)
    return environment.from_string(metered)


@contextmanager
def budget() -> Iterator[None]:
    """One render's budget (``MAX_WORK``), shared by every source rendered inside."""
    token = _METER.set(_Meter())
    try:
        yield
    finally:
        _METER.reset(token)


class RenderError(Exception):
    """A render failed; the message says why, never with a traceback."""


def render_source(source: str, html: bool, values: Mapping[str, Any], limit: int) -> str:
    """``source`` rendered with ``values``, streamed and stopped past ``limit`` characters;
    whatever goes wrong is a RenderError."""
    parts: list[str] = []
    size = 0
    try:
        for chunk in compiled(source, html).generate(values):
            size += len(chunk)
            if size > limit:
                raise RenderError(f"renders longer than {limit} characters")
            parts.append(chunk)
    except RenderError:
        raise
    except Exception as exc:  # the tenant's code failed, whatever it raised: a 422
        message = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
        raise RenderError(message[:500]) from None
    return "".join(parts)
