"""Just enough of Terraform to trace values through a configuration.

python-hcl2 parses the files; this module evaluates what a deployment's facts are
made of: literals, references to locals, variables (module inputs, tfvars or
defaults), ``each`` and dynamic-block iterators, and Terraform expressions over
them: operators, conditionals, ``for`` expressions, templates and the functions
the configuration calls. Expressions are parsed with python-hcl2's own grammar,
so precedence is Terraform's. Anything only known when Terraform applies (a
resource attribute, a module output) evaluates to ``Computed``, and so does any
expression that depends on one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions
from lark import Token, Tree
from lark.exceptions import LarkError

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}$")
INSTANCE = re.compile(r"^\$\{(\w+)\.([\w-]+)(?:\[(.+)\])?\.[\w-]+\}$")
MODULE_META = frozenset({"source", "version", "providers", "depends_on", "count", "for_each"})
# Roots that name something of this module rather than a resource, data source or module.
NAMESPACES = frozenset({"local", "var"})


@dataclass(frozen=True)
class Computed:
    """A value Terraform only knows at apply time; ``expression`` says what it is."""

    expression: str


class EvaluationError(ValueError):
    """An expression Terraform itself would reject (or one this reader cannot follow)."""


@dataclass
class Module:
    """The top-level blocks of one directory's ``*.tf`` files."""

    path: Path
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Module:
        module = cls(path)
        for file in sorted(path.glob("*.tf")):
            with file.open() as handle:
                parsed = hcl2.load(handle, serialization_options=OPTIONS)
            for block in parsed.get("locals", []):
                module.locals.update(block)
            for block in parsed.get("variable", []):
                module.variables.update(block)
            for block in parsed.get("resource", []):
                for kind, named in block.items():
                    module.resources.setdefault(kind, {}).update(named)
            for block in parsed.get("module", []):
                module.modules.update(block)
            for block in parsed.get("output", []):
                module.outputs.update(block)
            for block in parsed.get("check", []):
                module.checks.update(block)
        return module


class Scope:
    """Evaluates expressions of one module: its locals, its variables (the inputs a
    caller passed, else the defaults) and any iterators bound by ``for_each``."""

    def __init__(
        self,
        module: Module,
        inputs: Mapping[str, Any] | None = None,
        iterators: Mapping[str, Any] | None = None,
    ) -> None:
        self.module = module
        self.inputs = dict(inputs or {})
        self.iterators = dict(iterators or {})
        unknown = self.inputs.keys() - module.variables.keys()
        if unknown:
            raise EvaluationError(f"{module.path}: no variable {sorted(unknown)} to set")

    def child(self, name: str) -> Scope:
        """The scope inside the module block ``name`` of this module."""
        call = self.module.modules[name]
        inputs = {k: self.evaluate(v) for k, v in call.items() if k not in MODULE_META}
        return Scope(Module.load(self.module.path / call["source"]), inputs)

    def descendants(self) -> Iterator[Scope]:
        """This scope and those of every module it calls, recursively."""
        yield self
        for name in self.module.modules:
            yield from self.child(name).descendants()

    def bind(self, name: str, key: Any, value: Any) -> Scope:
        """This scope with the iterator ``name`` (``each``, or a dynamic block's) bound."""
        iterators = {**self.iterators, name: {"key": key, "value": value}}
        return Scope(self.module, self.inputs, iterators)

    def instances(self, kind: str) -> Iterator[tuple[Scope, dict[str, Any]]]:
        """Every instance of every resource of this type, evaluated (``for_each``
        expanded), with the scope it was evaluated in."""
        for body in self.module.resources.get(kind, {}).values():
            for scope in self._each(kind, body):
                yield scope, scope.evaluate_block(body)

    def instance(self, reference: Computed) -> tuple[Scope, dict[str, Any]]:
        """The resource instance an attribute reference of this module, such as
        ``${azurerm_servicebus_topic.this[each.value.topic].id}``, points at."""
        match = INSTANCE.match(reference.expression)
        if match is None:
            raise ValueError(f"not a reference to a resource instance: {reference.expression}")
        kind, name, key = match.groups()
        body = self.module.resources[kind][name]
        scope = self
        if key is not None:
            chosen = self.evaluate("${" + key + "}")
            scope = self.bind("each", chosen, self.evaluate(body["for_each"])[chosen])
        return scope, scope.evaluate_block(body)

    def output(self, name: str) -> Any:
        """The value of this module's output ``name``."""
        return self.evaluate(self.module.outputs[name]["value"])

    def validation_errors(self) -> list[str]:
        """The error message of every variable validation that fails for the
        inputs of this scope (what `terraform plan` would stop on)."""
        errors = []
        for name, spec in self.module.variables.items():
            for rule in spec.get("validation", []):
                if self._fails(rule["condition"], f"var.{name}"):
                    errors.append(f"var.{name}: {rule['error_message']}")
        return errors

    def check_warnings(self) -> list[str]:
        """The error message of every ``check`` assertion that fails (`terraform
        plan` warns with it)."""
        return [
            f"check.{name}: {rule['error_message']}"
            for name, spec in self.module.checks.items()
            for rule in spec.get("assert", [])
            if self._fails(rule["condition"], f"check.{name}")
        ]

    def _fails(self, condition: Any, where: str) -> bool:
        try:
            result = self.evaluate(condition)
        except EvaluationError:
            return True  # Terraform reports an error evaluating the condition
        if isinstance(result, Computed):
            return False  # decided at apply time
        if not isinstance(result, bool):
            raise EvaluationError(f"{where}: condition is {result!r}, not a bool")
        return not result

    def _each(self, kind: str, body: Mapping[str, Any]) -> Iterator[Scope]:
        if "for_each" not in body:
            yield self
            return
        items = self.evaluate(body["for_each"])
        if isinstance(items, list):  # a set of strings: each.key is each.value
            items = {item: item for item in items}
        if not isinstance(items, dict):
            raise ValueError(f"{kind}: for_each is not a traceable map: {body['for_each']}")
        for key, value in items.items():
            yield self.bind("each", key, value)

    def evaluate_block(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A block's arguments and nested blocks, with ``dynamic`` blocks expanded."""
        result: dict[str, Any] = {}
        for key, value in body.items():
            if key in {"for_each", "lifecycle"}:
                continue
            if key == "dynamic":
                for entry in value:
                    for label, spec in entry.items():
                        result[label] = self._expand(label, spec)
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                result[key] = [self.evaluate_block(v) for v in value]
            else:
                result[key] = self.evaluate(value)
        return result

    def _expand(self, label: str, spec: Mapping[str, Any]) -> list[dict[str, Any]] | Computed:
        items = self.evaluate(spec["for_each"])
        if isinstance(items, Computed):
            return items
        pairs = items.items() if isinstance(items, dict) else enumerate(items)
        name = spec.get("iterator", label)
        return [self.bind(name, k, v).evaluate_block(spec["content"][0]) for k, v in pairs]

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.evaluate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        result = _Evaluator(self, {}).evaluate(_parse(value))
        if result is UNKNOWN or (isinstance(result, Computed) and not REFERENCE.match(value)):
            # Something only an apply knows: name the whole expression (a bare
            # reference to a local keeps the Computed that local evaluates to).
            return Computed(value)
        return result

    def lookup(self, namespace: str, name: str) -> Any:
        """``local.<name>`` or ``var.<name>`` in this scope."""
        if namespace == "local":
            if name not in self.module.locals:
                raise EvaluationError(f"{self.module.path}: no local.{name}")
            return self.evaluate(self.module.locals[name])
        if name in self.inputs:
            return self.inputs[name]
        if name not in self.module.variables:
            raise EvaluationError(f"{self.module.path}: no var.{name}")
        spec = self.module.variables[name]
        if "default" not in spec:
            raise EvaluationError(f"{self.module.path}: var.{name} has no value and no default")
        return self.evaluate(spec["default"])


# --- expressions ----------------------------------------------------------------


@cache
def _parse(text: str) -> Tree:
    """The expression tree of a serialized value: ``${expr}`` is an expression,
    anything else holding ``${`` a string template."""
    if text.startswith("${") and text.endswith("}"):
        try:
            return _expression_of(text[2:-1])
        except LarkError:
            pass  # "${a}-${b}": a template that starts and ends with interpolations
    try:
        return _expression_of('"' + text + '"')
    except LarkError as error:
        raise EvaluationError(f"cannot parse {text!r}: {error}") from error


def _expression_of(source: str) -> Tree:
    tree = hcl2.parses_to_tree(f"__value = {source}\n")
    (attribute,) = [c for c in tree.children[0].children if _is(c, "attribute")]
    return _trees(attribute)[-1]


def _is(node: Any, name: str) -> bool:
    return isinstance(node, Tree) and node.data == name


def _trees(node: Tree) -> list[Tree]:
    """The meaningful children of a node: subtrees, without layout."""
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _tokens(node: Tree) -> list[str]:
    return [str(c) for c in node.children if isinstance(c, Token)]


@dataclass(frozen=True)
class _Namespace:
    """``local`` or ``var`` before its attribute is read."""

    name: str


UNKNOWN = Computed("(known after apply)")
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class _Evaluator:
    def __init__(self, scope: Scope, names: Mapping[str, Any]) -> None:
        self.scope = scope
        self.names = names  # for-expression variables

    def with_names(self, names: Mapping[str, Any]) -> _Evaluator:
        return _Evaluator(self.scope, {**self.names, **names})

    def evaluate(self, node: Tree) -> Any:
        handler = getattr(self, "_" + str(node.data), None)
        if handler is None:
            raise EvaluationError(f"unsupported expression: {node.data}")
        return handler(node)

    # terms

    def _expr_term(self, node: Tree) -> Any:
        (inner,) = _trees(node)
        return self.evaluate(inner)

    def _int_lit(self, node: Tree) -> int:
        return int(_tokens(node)[0])

    def _float_lit(self, node: Tree) -> float | int:
        return _number(float(_tokens(node)[0]))

    def _literal_value(self, node: Tree) -> Any:
        return {"true": True, "false": False, "null": None}[_tokens(node)[0]]

    def _identifier(self, node: Tree) -> Any:
        name = _tokens(node)[0]
        if name in self.names:
            return self.names[name]
        if name in self.scope.iterators:
            return self.scope.iterators[name]
        if name in NAMESPACES:
            return _Namespace(name)
        return UNKNOWN  # a resource type, data, module, path, terraform, count

    def _string(self, node: Tree) -> Any:
        parts = []
        for part in _trees(node):
            (inner,) = part.children
            if isinstance(inner, Tree):
                if inner.data != "interpolation":
                    raise EvaluationError(f"template directives are not supported: {inner.data}")
                parts.append(self.evaluate(_trees(inner)[0]))
            elif inner.type == "ESCAPED_INTERPOLATION" or inner.type == "ESCAPED_DIRECTIVE":
                parts.append(str(inner)[1:])
            else:
                parts.append(re.sub(r"\\(.)", lambda m: ESCAPES.get(m[1], m[0]), str(inner)))
        if len(parts) == 1 and len(_trees(node)) == 1 and _trees(_trees(node)[0]):
            return parts[0]  # "${x}" alone is x itself, of whatever type
        if any(isinstance(p, Computed) for p in parts):
            return UNKNOWN
        return "".join(_as_string(p) for p in parts)

    def _tuple(self, node: Tree) -> list[Any]:
        return [self.evaluate(item) for item in _trees(node)]

    def _object(self, node: Tree) -> dict[str, Any] | Computed:
        result: dict[str, Any] = {}
        for element in _trees(node):
            key_node, value_node = _trees(element)
            key = self._key(key_node)
            if isinstance(key, Computed):
                return UNKNOWN
            result[_as_string(key)] = self.evaluate(value_node)
        return result

    def _key(self, node: Tree) -> Any:
        (inner,) = _trees(node) or [None]
        if inner is None:  # a keyword used as a key
            return _tokens(node)[0]
        terms = _trees(inner)
        if _is(inner, "expr_term") and len(terms) == 1 and _is(terms[0], "identifier"):
            return _tokens(terms[0])[0]  # a bare name is the key itself
        return self.evaluate(inner)

    # access

    def _get_attr_expr_term(self, node: Tree) -> Any:
        base, attr = _trees(node)
        return self._attribute(self.evaluate(base), _tokens(_trees(attr)[0])[0])

    def _attribute(self, value: Any, name: str) -> Any:
        if isinstance(value, _Namespace):
            return self.scope.lookup(value.name, name)
        if isinstance(value, Computed):
            return value
        if isinstance(value, dict):
            # An absent optional() attribute of an object is null in Terraform.
            return value.get(name)
        raise EvaluationError(f"cannot read .{name} of {value!r}")

    def _index_expr_term(self, node: Tree) -> Any:
        base, index = _trees(node)
        value = self.evaluate(base)
        key: Any = (
            int(_tokens(index)[-1])
            if index.data == "short_index"
            else self.evaluate(_trees(index)[0])
        )
        if isinstance(value, Computed) or isinstance(key, Computed):
            return UNKNOWN
        if isinstance(value, dict):
            if key not in value:
                raise EvaluationError(f"no key {key!r} in {sorted(value)}")
            return value[key]
        if isinstance(value, list) and isinstance(key, int) and -1 < key < len(value):
            return value[key]
        raise EvaluationError(f"cannot index {value!r} with {key!r}")

    def _full_splat_expr_term(self, node: Tree) -> Any:
        base, splat = _trees(node)
        value = self.evaluate(base)
        if isinstance(value, Computed):
            return UNKNOWN
        items = value if isinstance(value, list) else ([] if value is None else [value])
        result = []
        for item in items:
            for step in _trees(splat):
                if step.data == "get_attr":
                    item = self._attribute(item, _tokens(_trees(step)[0])[0])
                else:
                    raise EvaluationError("indexes after a splat are not supported")
            result.append(item)
        return result

    _attr_splat_expr_term = _full_splat_expr_term

    # operators

    def _conditional(self, node: Tree) -> Any:
        condition, yes, no = _trees(node)
        chosen = self.evaluate(condition)
        if isinstance(chosen, Computed):
            return UNKNOWN
        if not isinstance(chosen, bool):
            raise EvaluationError(f"condition is {chosen!r}, not a bool")
        return self.evaluate(yes if chosen else no)

    def _unary_op(self, node: Tree) -> Any:
        operator = _tokens(node)[0]
        value = self.evaluate(_trees(node)[0])
        if isinstance(value, Computed):
            return UNKNOWN
        if operator == "!":
            return not _bool(value)
        return _number(-_numeric(value))

    def _binary_op(self, node: Tree) -> Any:
        left_node, term = _trees(node)
        operator_node, right_node = _trees(term)
        operator = _tokens(operator_node)[0]
        left, right = self.evaluate(left_node), self.evaluate(right_node)
        if isinstance(left, Computed) or isinstance(right, Computed):
            return UNKNOWN
        if operator in {"==", "!="}:
            equal = type(left) is type(right) or (_is_number(left) and _is_number(right))
            equal = equal and left == right
            return equal if operator == "==" else not equal
        if operator in {"&&", "||"}:
            return (
                (_bool(left) and _bool(right))
                if operator == "&&"
                else (_bool(left) or _bool(right))
            )
        a, b = _numeric(left), _numeric(right)
        if operator in COMPARISONS:
            return COMPARISONS[operator](a, b)
        if operator in {"/", "%"} and b == 0:
            raise EvaluationError(f"division by zero: {left} {operator} {right}")
        return _number(ARITHMETIC[operator](a, b))

    # for expressions

    def _for_tuple_expr(self, node: Tree) -> Any:
        intro, *rest = _trees(node)
        value, condition = rest[0], (rest[1] if len(rest) > 1 else None)
        pairs = self._iterate(intro)
        if isinstance(pairs, Computed):
            return UNKNOWN
        result = []
        for names in pairs:
            inner = self.with_names(names)
            if condition is not None and not inner._keep(condition):
                continue
            result.append(inner.evaluate(value))
        return result

    def _for_object_expr(self, node: Tree) -> Any:
        intro, key, value, *rest = _trees(node)
        condition = rest[0] if rest else None
        grouping = "..." in _tokens(node)
        pairs = self._iterate(intro)
        if isinstance(pairs, Computed):
            return UNKNOWN
        result: dict[str, Any] = {}
        for names in pairs:
            inner = self.with_names(names)
            if condition is not None and not inner._keep(condition):
                continue
            k = inner.evaluate(key)
            if isinstance(k, Computed):
                return UNKNOWN
            k = _as_string(k)
            if grouping:
                result.setdefault(k, []).append(inner.evaluate(value))
            elif k in result:
                raise EvaluationError(f"duplicate key {k!r} in a for expression")
            else:
                result[k] = inner.evaluate(value)
        return result

    def _iterate(self, intro: Tree) -> list[dict[str, Any]] | Computed:
        *names, collection = _trees(intro)
        items = self.evaluate(collection)
        if isinstance(items, Computed):
            return UNKNOWN
        if isinstance(items, dict):
            pairs = [(k, items[k]) for k in sorted(items)]
        elif isinstance(items, list):
            pairs = list(enumerate(items))
        else:
            raise EvaluationError(f"cannot iterate over {items!r}")
        labels = [_tokens(n)[0] for n in names]
        if len(labels) == 1:
            return [{labels[0]: v} for _, v in pairs]
        return [{labels[0]: k, labels[1]: v} for k, v in pairs]

    def _keep(self, condition: Tree) -> bool:
        (expression,) = _trees(condition)
        kept = self.evaluate(expression)
        if isinstance(kept, Computed):
            raise EvaluationError("a for expression's condition is unknown")
        return _bool(kept)

    # functions

    def _function_call(self, node: Tree) -> Any:
        name = _tokens(_trees(node)[0])[0]
        arguments = [t for t in _trees(node)[1:] if t.data == "arguments"]
        nodes = _trees(arguments[0]) if arguments else []
        expand = bool(arguments) and "..." in _tokens(arguments[0])
        if name in {"can", "try"}:
            return self._guarded(name, nodes)
        if name not in FUNCTIONS:
            raise EvaluationError(f"function {name}() is not supported by this reader")
        values = [self.evaluate(n) for n in nodes]
        if expand:
            *values, last = values
            if isinstance(last, Computed):
                return UNKNOWN
            values += list(last.values() if isinstance(last, dict) else last)
        if any(isinstance(v, Computed) for v in values):
            return UNKNOWN
        return FUNCTIONS[name](*values)

    def _guarded(self, name: str, nodes: list[Tree]) -> Any:
        for node in nodes:
            try:
                value = self.evaluate(node)
            except EvaluationError:
                continue
            return True if name == "can" else value
        if name == "can":
            return False
        raise EvaluationError("try(): no argument could be evaluated")


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: math.fmod(a, b),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric(value: Any) -> int | float:
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            return _number(float(value))
        except ValueError:
            pass
    raise EvaluationError(f"{value!r} is not a number")


def _number(value: int | float) -> int | float:
    """Terraform has one number type: 2.0 is 2 (and renders as "2")."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise EvaluationError(f"{value!r} is not a bool")


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(_number(value))
    if isinstance(value, str):
        return value
    raise EvaluationError(f"{value!r} is not a string")


def _format(template: str, *values: Any) -> str:
    queue = list(values)

    def verb(match: re.Match[str]) -> str:
        if match[1] == "%":
            return "%"
        if not queue:
            raise EvaluationError(f"format({template!r}): too few arguments")
        value = queue.pop(0)
        return str(int(_numeric(value))) if match[1] == "d" else _as_string(value)

    return re.sub(r"%([sdv%])", verb, template)


def _formatlist(template: str, *lists: Any) -> list[str]:
    lengths = {len(v) for v in lists if isinstance(v, list)}
    if len(lengths) != 1:
        raise EvaluationError("formatlist(): the lists differ in length")
    (length,) = lengths
    return [
        _format(template, *[(v[i] if isinstance(v, list) else v) for v in lists])
        for i in range(length)
    ]


def _regex(pattern: str, text: str) -> Any:
    match = re.search(pattern, text)
    if match is None:
        raise EvaluationError(f"regex({pattern!r}) does not match {text!r}")
    if match.groupdict():
        return match.groupdict()
    return list(match.groups()) if match.groups() else match[0]


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    raise EvaluationError("coalesce(): no non-null argument")


def _lookup(mapping: dict[str, Any], key: str, *default: Any) -> Any:
    if key in mapping:
        return mapping[key]
    if default:
        return default[0]
    raise EvaluationError(f"lookup(): no key {key!r}")


def _sum(values: list[Any]) -> Any:
    if not values:
        raise EvaluationError("sum(): cannot sum an empty list")  # as Terraform says
    return _number(sum(_numeric(v) for v in values))


def _toset(values: list[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    return sorted(unique) if all(isinstance(v, str) for v in unique) else unique


def _merge(*maps: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for value in maps:
        if value is None:
            continue
        if not isinstance(value, dict):
            raise EvaluationError(f"merge(): {value!r} is not a map")
        merged.update(value)
    return merged


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def function(*values: Any) -> Any:
        if not values:
            raise EvaluationError("min()/max() need at least one number")
        return _number(pick(_numeric(v) for v in values))

    return function


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda x: _number(abs(_numeric(x))),
    "alltrue": lambda xs: all(_bool(x) for x in xs),
    "anytrue": lambda xs: any(_bool(x) for x in xs),
    "ceil": lambda x: math.ceil(_numeric(x)),
    "coalesce": _coalesce,
    "concat": lambda *lists: [item for items in lists for item in items],
    "contains": lambda xs, x: x in xs,
    "distinct": lambda xs: list(dict.fromkeys(xs)),
    "floor": lambda x: math.floor(_numeric(x)),
    "format": _format,
    "formatlist": _formatlist,
    "join": lambda separator, xs: separator.join(_as_string(x) for x in xs),
    "keys": lambda m: sorted(m),
    "length": len,
    "lookup": _lookup,
    "lower": lambda s: s.lower(),
    "max": _extreme(max),
    "merge": _merge,
    "min": _extreme(min),
    "regex": _regex,
    "sum": _sum,
    "tolist": list,
    "tonumber": lambda x: None if x is None else _numeric(x),
    "toset": _toset,
    "tostring": lambda x: None if x is None else _as_string(x),
    "upper": lambda s: s.upper(),
    "values": lambda m: [m[k] for k in sorted(m)],
}
