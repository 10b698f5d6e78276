"""The expression reader in tests/infra/hcl.py evaluates as Terraform does, and
says Computed for what only an apply knows (the checks rely on both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.infra.hcl import Computed, EvaluationError, Module, Scope

CONFIGURATION = """
variable "tier" {
  type    = string
  default = "a"
}

variable "n" {
  type    = number
  default = null

  validation {
    condition     = var.n == null ? true : var.n >= 1
    error_message = "n must be at least 1."
  }
}

locals {
  m = { b = 2, a = 1 }
}
"""


@pytest.fixture(scope="module")
def scope(tmp_path_factory: pytest.TempPathFactory) -> Scope:
    directory: Path = tmp_path_factory.mktemp("module")
    (directory / "main.tf").write_text(CONFIGURATION)
    return Scope(Module.load(directory))


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ('${var.tier == "a" ? 1 : 2}', 1),
        ("${1 + 2 * 3}", 7),
        ("${5000 / 60 > 83}", True),
        ("${floor(5000 / 60)}", 83),
        ("${10 / 4}", 2.5),
        ("${8 / 4}", 2),  # one number type: 2, not 2.0
        ("${min([3, 1, 2]...)}", 1),
        ("${max(1, floor(0.4))}", 1),
        ("${coalesce(var.n, 16)}", 16),
        ("${[for k, v in local.m : k if v > 1]}", ["b"]),
        ("${{for k, v in local.m : k => v * 10}}", {"a": 10, "b": 20}),
        ("${sum(concat([0], [for v in values(local.m) : v]))}", 3),
        ('${contains(keys(local.m), "a") && !false}', True),
        ("sb-${var.tier}-${local.m.b}", "sb-a-2"),
        ('${join(", ", formatlist("\'%s\'", ["x", "y"]))}', "'x', 'y'"),
        ("${local.m}", {"b": 2, "a": 1}),
        ('${can(regex("^[a-z]+$", "abc"))}', True),
        ('${can(regex("^[a-z]+$", "ABC"))}', False),
    ],
)
def test_expressions_evaluate_as_terraform_does(scope: Scope, expression: str, value: Any) -> None:
    assert scope.evaluate(expression) == value


def test_a_resource_attribute_is_computed_and_so_is_what_depends_on_it(scope: Scope) -> None:
    assert scope.evaluate("${azurerm_x.this.id}") == Computed("${azurerm_x.this.id}")
    assert scope.evaluate('${"x-${module.a.b}"}') == Computed('${"x-${module.a.b}"}')
    # ...unless a known condition picks the other branch.
    assert scope.evaluate('${var.tier == "a" ? 1 : module.a.b}') == 1


def test_what_terraform_rejects_is_an_error(scope: Scope) -> None:
    for expression in ("${local.m.c + 1}", "${sum([])}", "${local.nothing}", "${unknownfn(1)}"):
        with pytest.raises(EvaluationError):
            scope.evaluate(expression)


def test_validations_are_evaluated_for_the_inputs(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(CONFIGURATION)
    module = Module.load(tmp_path)
    assert Scope(module).validation_errors() == []
    assert Scope(module, {"n": 2}).validation_errors() == []
    assert Scope(module, {"n": 0}).validation_errors() == ["var.n: n must be at least 1."]
    with pytest.raises(EvaluationError):
        Scope(module, {"undeclared": 1})
