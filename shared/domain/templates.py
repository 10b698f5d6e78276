"""Message templates: the resource, the checks a template passes before it is kept, and
rendering a template's variant for a channel type (in a bounded sandbox, see below).

A template declares its variables and holds one variant per channel type (plus
``default``); each variant's sources are Jinja2. Rendering never trusts the source:
it runs in Jinja's immutable sandbox with ``StrictUndefined``, and OCM bounds what a
render may cost, because one tenant's template runs in the process that serves all:

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
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sized
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from types import GeneratorType
from typing import Annotated, Any, Literal, cast

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, _PassArg, pass_context
from jinja2.visitor import NodeTransformer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.channels import NAME_PATTERN
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import MAX_TEXT, FreeJson
from shared.domain.models import Document

VariantKey = Literal["email", "sms", "whatsapp", "telegram", "push", "chat", "sandbox", "default"]
VariableType = Literal["string", "number", "boolean", "any"]
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
LANGUAGE = r"^[a-z]{2,3}(?:_[A-Z]{2})?$"
"""Meta's template language codes: ``en``, ``en_US``, ``pt_BR``, ``fil``."""
RESERVED = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is"}
    | {"if", "else", "loop", "self", "range", "dict", "cycler", "joiner", "caller"}
)
"""Names a template could not reach as variables (literals, operators, globals)."""

MAX_HTML = 200_000
MAX_SUBJECT = 998
MAX_TITLE = 1024
MAX_PUSH_BODY = 4096
MAX_SOURCES = 400_000
"""All sources of a template together: the document stays well inside a store's limit."""
MAX_VALUE = 262_144
"""The most characters any value built during a render may have (a message's size)."""
MAX_WORK = 50_000
MAX_DIGITS = 4300
"""The most digits a number may grow to (Python prints no longer ones)."""


class TemplateVariable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="Referenced as {{ name }}.")
    required: bool = True
    type: VariableType = "string"
    description: str | None = Field(default=None, max_length=1024)


class WhatsAppTemplate(BaseModel):
    """A template approved by Meta, sent outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$", description="The approved template's name.")
    language: str = Field(pattern=LANGUAGE, description="en_US, pt_BR, …")
    parameters: list[Annotated[str, Field(pattern=IDENTIFIER)]] = Field(
        default_factory=list,
        max_length=100,
        description="The variables filling the body's {{1}}, {{2}}, … in order.",
    )


class TemplateVariant(BaseModel):
    """Jinja2 sources for one channel type; which fields a type uses is checked."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=4096)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    html: str | None = Field(default=None, min_length=1, max_length=MAX_HTML)
    title: str | None = Field(default=None, min_length=1, max_length=4096)
    whatsapp_template: WhatsAppTemplate | None = None


Variables = Annotated[list[TemplateVariable], Field(max_length=100)]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique per tenant; immutable.")
    description: str | None = Field(default=None, max_length=1024)
    variables: Variables = Field(default_factory=list)
    variants: dict[VariantKey, TemplateVariant] = Field(
        min_length=1, description="By channel type; `default` serves the other types."
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TemplateUpdate(BaseModel):
    """``variables`` replace the list; ``variants`` merge by key (null removes one)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=1024)
    variables: Variables | None = None
    variants: dict[VariantKey, TemplateVariant | None] | None = None


class TemplatePublic(BaseModel):
    id: str
    name: str
    description: str | None
    variables: list[TemplateVariable]
    variants: dict[VariantKey, TemplateVariant]
    created_at: str
    updated_at: str


class TemplatePreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_type: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="email, sms, …")
    data: FreeJson = Field(default_factory=dict)
    language: str | None = Field(default=None, pattern=LANGUAGE)
    in_window: bool | None = Field(
        default=None, description="WhatsApp: false renders the variant's WhatsApp template."
    )


# What a variant of each key may carry, and what it needs at least one of.
_USES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "email": (frozenset({"subject", "text", "html"}), ("text", "html")),
    "push": (frozenset({"title", "text"}), ("title", "text")),
    "whatsapp": (frozenset({"text", "whatsapp_template"}), ("text", "whatsapp_template")),
    "default": (frozenset({"subject", "text", "html", "title"}), ("text",)),
}
_TEXT_ONLY = (frozenset({"text"}), ("text",))
SOURCES = ("subject", "text", "html", "title")


def check_template(
    variables: list[TemplateVariable], variants: Mapping[str, TemplateVariant]
) -> None:
    """Refuse a template that could not render: TEMPLATE_INVALID (shape, syntax),
    then TEMPLATE_VARIABLE_UNDECLARED (a source or parameter naming no variable)."""
    errors = _variable_problems(variables) + _variant_problems(variants)
    if sum(len(s) for v in variants.values() for s in _sources(v).values()) > MAX_SOURCES:
        errors.append(FieldError("variants", f"the sources exceed {MAX_SOURCES} characters"))
    for key, variant in variants.items():
        for name, source in _sources(variant).items():
            try:
                _compiled(source, name == "html")
            except TemplateSyntaxError as exc:
                message = f"line {exc.lineno}: {exc.message}"
                errors.append(FieldError(f"variants.{key}.{name}", message))
            except RecursionError:
                errors.append(FieldError(f"variants.{key}.{name}", "nests too deeply"))
    if errors:
        raise ValidationFailed("The template is not valid", code="TEMPLATE_INVALID", errors=errors)
    undeclared = _undeclared({v.name for v in variables}, variants)
    if undeclared:
        raise ValidationFailed(
            "The template uses variables it does not declare",
            code="TEMPLATE_VARIABLE_UNDECLARED",
            errors=undeclared,
        )


def _sources(variant: TemplateVariant) -> dict[str, str]:
    return {name: s for name in SOURCES if (s := getattr(variant, name)) is not None}


def _variable_problems(variables: list[TemplateVariable]) -> list[FieldError]:
    errors, seen = [], set()
    for i, variable in enumerate(variables):
        if variable.name in seen:
            errors.append(FieldError(f"variables.{i}.name", "declared twice"))
        elif variable.name in RESERVED:
            errors.append(FieldError(f"variables.{i}.name", "reserved in templates"))
        seen.add(variable.name)
    return errors


def _variant_problems(variants: Mapping[str, TemplateVariant]) -> list[FieldError]:
    if not variants:
        return [FieldError("variants", "at least one variant")]
    errors = []
    for key, variant in variants.items():
        uses, needs = _USES.get(key, _TEXT_ONLY)
        given = variant.model_dump(exclude_none=True)
        errors += [
            FieldError(f"variants.{key}.{name}", f"a {key} variant does not use {name}")
            for name in given
            if name not in uses
        ]
        if not any(name in given for name in needs):
            errors.append(FieldError(f"variants.{key}", f"needs {' or '.join(needs)}"))
    return errors


def _undeclared(declared: set[str], variants: Mapping[str, TemplateVariant]) -> list[FieldError]:
    errors = []
    for key, variant in variants.items():
        for name, source in _sources(variant).items():
            used = meta.find_undeclared_variables(_ENVIRONMENTS[name == "html"].parse(source))
            if used - declared:
                names = ", ".join(sorted(used - declared))
                errors.append(FieldError(f"variants.{key}.{name}", f"undeclared: {names}"))
        parameters = variant.whatsapp_template.parameters if variant.whatsapp_template else []
        errors += [
            FieldError(f"variants.{key}.whatsapp_template.parameters.{i}", "undeclared")
            for i, p in enumerate(parameters)
            if p not in declared
        ]
    return errors


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def render(
    template: Document,
    channel_type: str,
    data: Any,
    *,
    language: str | None = None,
    in_window: bool | None = None,
    at: str = "content.",
) -> tuple[Document, str | None]:
    """The content (and subject) a stored template renders to for a channel type.

    ``at`` prefixes the fields errors name (``content.data.x`` for a message)."""
    values = check_data(template["variables"], data, f"{at}data")
    variant = template["variants"].get(channel_type) or template["variants"].get("default")
    if variant is None:
        raise ValidationFailed(
            f"The template {template['name']!r} has no {channel_type} or default variant",
            code="TEMPLATE_VARIANT_MISSING",
            errors=[FieldError(f"{at}template", f"no {channel_type} or default variant")],
        )
    if language is not None and not re.match(LANGUAGE, language):
        raise ValidationFailed(
            "The language is not valid",
            errors=[FieldError(f"{at}language", "a language code like en_US")],
        )
    key = channel_type if channel_type in template["variants"] else "default"
    fields = _Fields(template["name"], key, variant, values, at)
    token = _METER.set(_Meter())  # one budget for all fields of the message
    try:
        return _render_variant(fields, channel_type, language, in_window)
    finally:
        _METER.reset(token)


def _render_variant(
    fields: _Fields, channel_type: str, language: str | None, in_window: bool | None
) -> tuple[Document, str | None]:
    variant, values = fields.variant, fields.values
    if channel_type == "email":
        return _email(fields), fields.line("subject", MAX_SUBJECT)
    if channel_type == "push":
        push = {
            "title": fields.line("title", MAX_TITLE),
            "body": fields.text("text", MAX_PUSH_BODY),
        }
        return {"type": "push", **{k: v for k, v in push.items() if v}, "data": {}}, None
    wt = variant.get("whatsapp_template")
    if channel_type == "whatsapp" and wt and (in_window is False or "text" not in variant):
        return _whatsapp_template(wt, values, language), None
    return {"type": "text", "text": fields.required("text", MAX_TEXT)}, None


def _email(fields: _Fields) -> Document:
    if "html" not in fields.variant:
        return {"type": "text", "text": fields.required("text", MAX_TEXT)}
    content: Document = {"type": "html", "html": fields.required("html", MAX_HTML)}
    text = fields.text("text", MAX_TEXT)
    return {**content, "text": text} if text else content


def _whatsapp_template(wt: Document, values: dict[str, Any], language: str | None) -> Document:
    """What Meta sends as a template message: the body's parameters as text, in order."""
    parameters = ["" if values[p] is None else str(values[p]) for p in wt["parameters"]]
    return {
        "type": "template",
        "template": wt["name"],
        "language": language or wt["language"],
        "data": {"parameters": parameters},
    }


@dataclass(frozen=True, slots=True)
class _Fields:
    """A variant's sources, rendered on demand with the message's values."""

    template: str
    key: str
    variant: Document
    values: dict[str, Any]
    at: str

    def text(self, name: str, limit: int) -> str | None:
        source = self.variant.get(name)
        if source is None:
            return None
        try:
            return _render_source(source, name == "html", self.values, limit)
        except _RenderError as exc:
            raise self._failed(name, str(exc)) from None

    def required(self, name: str, limit: int) -> str:
        rendered = self.text(name, limit)
        if not rendered:
            raise self._failed(name, "rendered empty")
        return rendered

    def line(self, name: str, limit: int) -> str | None:
        """A one-line field (subject, title): line breaks and runs of spaces become one."""
        rendered = self.text(name, limit)
        if rendered is None:
            return None
        return " ".join(rendered.split()) or None

    def _failed(self, name: str, message: str) -> ValidationFailed:
        return ValidationFailed(
            f"The template {self.template!r} could not be rendered ({self.key} {name}): {message}",
            code="TEMPLATE_RENDER_FAILED",
            errors=[FieldError(f"{self.at}template", f"variants.{self.key}.{name}: {message}")],
        )


def check_data(variables: list[Document], data: Any, at: str) -> dict[str, Any]:
    """Every declared variable's value (None for a missing optional one), or the
    first kind of problem (missing, unknown, invalid) with every problem listed."""
    if not isinstance(data, dict):
        raise ValidationFailed("The data is not valid", errors=[FieldError(at, "an object")])
    declared = {v["name"]: v for v in variables}
    missing = [
        FieldError(f"{at}.{name}", "required")
        for name, v in declared.items()
        if v.get("required", True) and data.get(name) is None
    ]
    unknown = [
        FieldError(f"{at}.{k}", "not a variable of the template") for k in data if k not in declared
    ]
    invalid = [
        FieldError(f"{at}.{k}", _TYPE_NAMES[declared[k]["type"]])
        for k, value in data.items()
        if k in declared and value is not None and not _is_type(value, declared[k]["type"])
    ]
    for code, detail, errors in (
        ("TEMPLATE_VARIABLE_MISSING", "A required template variable is missing", missing),
        ("TEMPLATE_VARIABLE_UNKNOWN", "The data names a variable the template lacks", unknown),
        ("TEMPLATE_VARIABLE_INVALID", "A template variable has the wrong type", invalid),
    ):
        if errors:
            raise ValidationFailed(detail, code=code, errors=missing + unknown + invalid)
    return {name: data.get(name) for name in declared}


_TYPE_NAMES = {"string": "a string", "number": "a number", "boolean": "true or false", "any": ""}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, bool) if kind == "boolean" else True


class _RenderError(Exception):
    """A render failed; the message says why, never with a traceback."""


def _render_source(source: str, html: bool, values: Mapping[str, Any], limit: int) -> str:
    parts: list[str] = []
    size = 0
    try:
        for chunk in _compiled(source, html).generate(values):
            size += len(chunk)
            if size > limit:
                raise _RenderError(f"renders longer than {limit} characters")
            parts.append(chunk)
    except _RenderError:
        raise
    except Exception as exc:  # the tenant's code failed, whatever it raised: a 422
        message = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
        raise _RenderError(message[:500]) from None
    return "".join(parts)


# ---------------------------------------------------------------------------
# The bounded sandbox
# ---------------------------------------------------------------------------


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


_ENVIRONMENTS = {False: _Sandbox(html=False), True: _Sandbox(html=True)}


@lru_cache(maxsize=128)
def _compiled(source: str, html: bool) -> Template:
    """A source compiled for rendering (kept by source: a batch compiles it once)."""
    environment = _ENVIRONMENTS[html]
    ast = environment.parse(source)
    _refuse_unbounded(ast)
    metered = _Metering().visit(ast)
    assert isinstance(metered, nodes.Template)
    metered.set_environment(environment)
    return environment.from_string(metered)
