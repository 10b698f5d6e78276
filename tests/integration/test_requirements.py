"""requirements.txt (what Azure installs) covers every dependency the Functions
app loads, and names nothing the project does not declare."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def names(lines: list[str]) -> set[str]:
    found = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):  # pip options (-c constraints)
            found.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return found


def test_the_remote_build_installs_the_locked_versions() -> None:
    """Azure review C11: lower bounds alone let the remote build install whatever is
    newest on the day. requirements.txt takes requirements.lock as constraints; the
    lock ships in the package and pins every requirement within its bounds."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-c requirements.lock" in lines
    ignored = (ROOT / ".funcignore").read_text().splitlines()
    assert "requirements.lock" not in ignored and "*.lock" not in ignored
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {text}"


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
