"""requirements.txt (what Azure installs) covers every dependency the Functions
app loads, and names nothing the project does not declare."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def names(lines: list[str]) -> set[str]:
    found = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            found.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return found


def test_azure_gets_every_declared_dependency_that_function_app_loads() -> None:
    script = (
        "import sys, tempfile, function_app\n"
        "from shared import bootstrap\n"
        "from shared.config import Settings\n"
        "bootstrap.build(Settings(OCM_DATA_DIR=tempfile.mkdtemp()))  # lazy imports too\n"
        "print(*sys.modules, sep='\\n')\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = names(project["project"]["dependencies"])
    required = names((ROOT / "requirements.txt").read_text().splitlines())
    providers = packages_distributions()
    used = {
        dist.lower().replace("_", "-")
        for module in loaded
        for dist in providers.get(module.split(".")[0], [])
    }
    assert (used & declared) <= required, "add these to requirements.txt"
    assert required <= declared, "requirements.txt names a package pyproject.toml does not"
