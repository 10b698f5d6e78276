"""Just enough of Terraform to trace literal values through a configuration.

python-hcl2 parses the files; this module evaluates what a deployment's facts are
made of: literals, references to locals, variables (module inputs or defaults),
``each`` and dynamic-block iterators, and the ``join``/``merge`` calls. Anything
else (a resource attribute, a conditional, a ``for``) is only known when Terraform
applies, and evaluates to ``Computed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}$")
INSTANCE = re.compile(r"^\$\{(\w+)\.([\w-]+)(?:\[(.+)\])?\.[\w-]+\}$")
CALL = re.compile(r"^\$\{(join|merge)\((.*)\)\}$", re.DOTALL)
MODULE_META = frozenset({"source", "version", "providers", "depends_on", "count", "for_each"})


@dataclass(frozen=True)
class Computed:
    """A value Terraform only knows at apply time; ``expression`` says what it is."""

    expression: str


@dataclass
class Module:
    """The top-level blocks of one directory's ``*.tf`` files."""

    path: Path
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)

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

    def _each(self, kind: str, body: Mapping[str, Any]) -> Iterator[Scope]:
        if "for_each" not in body:
            yield self
            return
        items = self.evaluate(body["for_each"])
        if not isinstance(items, dict):
            raise ValueError(f"{kind}: for_each is not a traceable map: {body['for_each']}")
        for key, value in items.items():
            yield self.bind("each", key, value)

    def evaluate_block(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A block's arguments and nested blocks, with ``dynamic`` blocks expanded."""
        result: dict[str, Any] = {}
        for key, value in body.items():
            if key == "for_each":
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
        if reference := REFERENCE.match(value):
            return self._lookup(reference[1].split("."), value)
        if call := CALL.match(value):
            return self._call(call[1], _arguments(call[2]), value)
        return Computed(value)

    def _lookup(self, path: list[str], expression: str) -> Any:
        root, *rest = path
        if root == "local":
            current, rest = self.evaluate(self.module.locals[rest[0]]), rest[1:]
        elif root == "var":
            current, rest = self._variable(rest[0]), rest[1:]
        elif root in self.iterators:
            current = self.iterators[root]
        else:  # a resource, data source or module output
            return Computed(expression)
        for name in rest:
            if isinstance(current, Computed):
                return current
            # An absent optional() attribute of an object is null in Terraform.
            current = current.get(name) if isinstance(current, dict) else Computed(expression)
        return current

    def _variable(self, name: str) -> Any:
        if name in self.inputs:
            return self.inputs[name]
        return self.evaluate(self.module.variables[name]["default"])

    def _call(self, function: str, arguments: list[str], expression: str) -> Any:
        values = [self.evaluate(_as_expression(a)) for a in arguments]
        if any(isinstance(v, Computed) for v in values):
            return Computed(expression)
        if function == "join":
            separator, items = values
            if any(isinstance(item, Computed) for item in items):
                return Computed(expression)
            return separator.join(str(item) for item in items)
        merged: dict[str, Any] = {}
        for value in values:
            merged.update(value)
        return merged


def _arguments(text: str) -> list[str]:
    """Split a call's arguments at its top-level commas."""
    arguments, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"' and text[i - 1 : i] != "\\":
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
        elif not quoted and char in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            arguments.append(text[start:i].strip())
            start = i + 1
    arguments.append(text[start:].strip())
    return arguments


def _as_expression(argument: str) -> Any:
    """A call argument as python-hcl2 would have given it as an attribute value."""
    if argument.startswith('"') and argument.endswith('"'):
        return json.loads(argument)
    return "${" + argument + "}"
