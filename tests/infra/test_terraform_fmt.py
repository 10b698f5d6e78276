"""infra/ is formatted as `terraform fmt` writes it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.infra.deployment import INFRA

TERRAFORM = shutil.which("terraform")


@pytest.mark.skipif(
    TERRAFORM is None, reason="no `terraform` binary on PATH to run `terraform fmt`"
)
def test_terraform_files_are_formatted() -> None:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        "terraform fmt would change these files (run `terraform fmt -recursive infra`):\n"
        + result.stdout
    )
