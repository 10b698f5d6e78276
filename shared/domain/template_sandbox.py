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

``compiled`` compiles a source (refusing what the sandbox could not bound) and
``render_source`` renders one within the budget ``template_budget.budget`` opens. The
limits and the meter are in ``template_budget``, the metered filters and operations in
``template_metering``, and what an operation could build in ``template_sizes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner

from shared.domain.template_budget import elements, sized, spend, within
from shared.domain.template_metering import ITEM_FILTERS, ROUTED, Metering, finalize, metered_filter
from shared.domain.template_sizes import binop_size

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
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        for name in ("lipsum", "namespace"):  # megabytes of text; state that escapes loops
            del self.globals[name]
        self.filters = {
            name: metered_filter(name, f, by_item=name in ITEM_FILTERS)
            for name, f in self.filters.items()
        }
        self.filters.update(ROUTED)
        tests = cast(dict[str, Callable[..., Any]], self.tests)  # typed as "function"
        self.tests = {
            name: metered_filter(name, test, by_item=True) for name, test in tests.items()
        }

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        spend(within(binop_size(operator, left, right)))
        return sized(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``x[i]``; a slice builds a copy, so it is measured."""
        item = super().getitem(obj, argument)
        if isinstance(argument, slice):
            spend(elements(item))
            sized(item)
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
        spend(elements(owner))
        return sized(super().call(__context, __obj, *args, **kwargs))


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
    metered = Metering().visit(ast)
    assert isinstance(metered, nodes.Template)
    metered.set_environment(environment)
    return environment.from_string(metered)


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
