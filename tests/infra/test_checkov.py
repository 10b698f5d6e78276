"""checkov, offline, finds no failed check in infra/, on both scale tiers (the
default, and a --var-file with scale_tier = "provisioned"), and every skip is
justified.

checkov lives in its own virtual environment (its pins clash with ours), made
once under .cache/ and reused: about 30 s to make, a few seconds per scan.

checkov resolves the tier's conditions written on variables (the Service Bus SKU
is Premium in the provisioned scan: test_the_var_file_reaches_checkov) but not
dynamic blocks (the Cosmos DB throughput): tests/infra/test_scale_tiers.py checks
those with its own reader.
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


TIERS = ("serverless", "provisioned")
# A check of our own that fails on a Premium namespace: it shows which tier checkov read.
PROBE_ID = "CKV_OCM_1"
PROBE = f"""
from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class StandardNamespace(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="tests/infra probe: the Service Bus namespace is Standard",
            id="{PROBE_ID}",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["azurerm_servicebus_namespace"],
        )

    def scan_resource_conf(self, conf):
        return CheckResult.PASSED if conf.get("sku") == ["Standard"] else CheckResult.FAILED


check = StandardNamespace()
"""


# checkov renders variables through the graph in rounds and stops once 90% of a
# round's edges repeat for more than RENDER_EDGES_DUPLICATE_ITER_COUNT (4) rounds.
# infra/scale.tf's chain of derived locals needs a fifth: at 4, checkov stops before
# reaching module.function_app's variables and silently drops the checks that read
# them (CKV_AZURE_225 on var.zone_redundant: test_every_skip_is_for_a_check_that_
# fails_without_it notices). 10 leaves room; run checkov by hand with it too.
RENDER_ENV = {"BC_SKIP_MAPPING": "TRUE", "RENDER_EDGES_DUPLICATE_ITER_COUNT": "10"}


def scan(checkov: Path, directory: Path, *options: str) -> dict[str, Any]:
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
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **RENDER_ENV},
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report (exit {result.returncode}):\n{result.stderr}")
    return report


@pytest.fixture(scope="session")
def tier_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The checkov options that select each tier: none for the default, a tfvars
    file for the other."""
    var_file = tmp_path_factory.mktemp("tfvars") / "provisioned.tfvars"
    var_file.write_text('scale_tier = "provisioned"\n')
    return {"serverless": [], "provisioned": ["--var-file", str(var_file)]}


@pytest.fixture(scope="session")
def reports(checkov: Path, tier_options: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    return {tier: scan(checkov, INFRA, *tier_options[tier]) for tier in TIERS}


@pytest.fixture(scope="session")
def skips() -> dict[tuple[str, str], str]:
    """Every ``#checkov:skip`` in infra/: its reason, by (file as checkov names it, check)."""
    return {
        (f"/{file.relative_to(INFRA)}", check): reason.strip()
        for file in sorted(INFRA.rglob("*.tf"))
        for check, reason in SKIP.findall(file.read_text())
    }


@pytest.fixture(scope="session")
def unsuppressed(
    checkov: Path, tier_options: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """Scans of a copy of infra/ without its skips, on each tier."""
    copy = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    for file in copy.rglob("*.tf"):
        file.write_text(SKIP.sub("", file.read_text()))
    return {tier: scan(checkov, copy, *tier_options[tier]) for tier in TIERS}


@pytest.mark.parametrize("tier", TIERS)
def test_checkov_scanned_every_file(tier: str, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[tier]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert summary["resource_count"] > 0


@pytest.mark.parametrize("tier", TIERS)
def test_checkov_finds_no_failed_check(tier: str, reports: dict[str, dict[str, Any]]) -> None:
    failed = reports[tier]["results"]["failed_checks"]
    assert not failed, "checkov failed checks (fix them, or skip one with a reason):\n" + "\n".join(
        f"  {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): "
        f"{c['check_name']}"
        for c in failed
    )


def test_every_skip_says_why(skips: dict[tuple[str, str], str]) -> None:
    assert [place for place, reason in skips.items() if not reason] == []


def test_every_skip_is_for_a_check_that_fails_without_it(
    skips: dict[tuple[str, str], str], unsuppressed: dict[str, dict[str, Any]]
) -> None:
    """A skip of a check that would pass (or not run) on every tier hides nothing
    today and would hide a real failure tomorrow."""
    failing = {
        (c["file_path"], c["check_id"])
        for report in unsuppressed.values()
        for c in report["results"]["failed_checks"]
    }
    assert sorted(skips.keys() - failing) == [], "checkov skips that are not needed"


def test_the_var_file_reaches_checkov(
    checkov: Path, tier_options: dict[str, list[str]], tmp_path: Path
) -> None:
    """The provisioned scan is of the provisioned tier: with the tfvars file,
    checkov sees a Premium namespace (our probe fails), without it a Standard one."""
    (tmp_path / "__init__.py").touch()  # checkov loads a directory of checks as a package
    (tmp_path / "probe.py").write_text(PROBE)
    outcome = {}
    for tier in TIERS:
        report = scan(
            checkov,
            INFRA,
            "--external-checks-dir",
            str(tmp_path),
            "-c",
            PROBE_ID,
            *tier_options[tier],
        )
        summary = report.get("summary", report)  # without results checkov prints the summary alone
        outcome[tier] = (summary["passed"], summary["failed"])
    assert outcome == {"serverless": (1, 0), "provisioned": (0, 1)}
