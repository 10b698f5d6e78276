"""checkov, offline, finds no failed check in infra/, and every skip is justified.

checkov lives in its own virtual environment (its pins clash with ours), made
once under .cache/ and reused: about 30 s to make, a few seconds per scan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.deployment import INFRA

CHECKOV_VERSION = "3.3.30"
VENV = INFRA.parent / ".cache" / "checkov-venv"
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+):?(.*)")


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable, installed on first use."""
    ready = VENV / f".checkov-{CHECKOV_VERSION}"
    if not ready.exists():
        shutil.rmtree(VENV, ignore_errors=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        for command in (
            [sys.executable, "-m", "venv", str(VENV)],
            [*pip, f"checkov=={CHECKOV_VERSION}"],
        ):
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.fail(f"could not install checkov ({' '.join(command)}):\n{result.stderr}")
        ready.touch()
    return VENV / "bin" / "checkov"


def scan(checkov: Path, directory: Path) -> dict[str, Any]:
    """One offline scan: BC_SKIP_MAPPING and --skip-download keep checkov from
    calling home for its mappings and guidelines. No --quiet: its JSON would then
    leave out the passed and skipped checks."""
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report (exit {result.returncode}):\n{result.stderr}")
    return report


@pytest.fixture(scope="session")
def report(checkov: Path) -> dict[str, Any]:
    return scan(checkov, INFRA)


@pytest.fixture(scope="session")
def skips() -> dict[tuple[str, str], str]:
    """Every ``#checkov:skip`` in infra/: its reason, by (file as checkov names it, check)."""
    return {
        (f"/{file.relative_to(INFRA)}", check): reason.strip()
        for file in sorted(INFRA.rglob("*.tf"))
        for check, reason in SKIP.findall(file.read_text())
    }


@pytest.fixture(scope="session")
def unsuppressed(checkov: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A scan of a copy of infra/ without its skips."""
    copy = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    for file in copy.rglob("*.tf"):
        file.write_text(SKIP.sub("", file.read_text()))
    return scan(checkov, copy)


def test_checkov_scanned_every_file(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert summary["resource_count"] > 0


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    failed = report["results"]["failed_checks"]
    assert not failed, "checkov failed checks (fix them, or skip one with a reason):\n" + "\n".join(
        f"  {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): "
        f"{c['check_name']}"
        for c in failed
    )


def test_every_skip_says_why(skips: dict[tuple[str, str], str]) -> None:
    assert [place for place, reason in skips.items() if not reason] == []


def test_every_skip_is_for_a_check_that_fails_without_it(
    skips: dict[tuple[str, str], str], unsuppressed: dict[str, Any]
) -> None:
    """A skip of a check that would pass (or not run) hides nothing today and
    would hide a real failure tomorrow."""
    failing = {(c["file_path"], c["check_id"]) for c in unsuppressed["results"]["failed_checks"]}
    assert sorted(skips.keys() - failing) == [], "checkov skips that are not needed"
