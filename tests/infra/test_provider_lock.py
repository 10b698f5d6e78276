"""infra/.terraform.lock.hcl pins every provider the configuration requires, at a
version its constraints allow, with hashes for more than one platform: `terraform
init` then installs exactly what these files were checked against (azure-fidelity
review D1), and verifies each package against the recorded checksums."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

INFRA = Path(__file__).resolve().parents[2] / "infra"
LOCK = INFRA / ".terraform.lock.hcl"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def _required_providers() -> dict[str, set[str]]:
    """source → the version constraints written for it, across every module."""
    found: dict[str, set[str]] = {}
    for path in sorted(INFRA.rglob("*.tf")):
        parsed: dict[str, Any] = hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        for block in parsed.get("terraform", []):
            for required in block.get("required_providers", []):
                for spec in required.values():
                    source = spec["source"].lower()
                    found.setdefault(source, set())
                    if "version" in spec:
                        found[source].add(spec["version"])
    return found


def _locked() -> dict[str, dict[str, Any]]:
    parsed: dict[str, Any] = hcl2.loads(LOCK.read_text(), serialization_options=OPTIONS)
    out: dict[str, dict[str, Any]] = {}
    for block in parsed["provider"]:
        for address, body in block.items():
            out[address.strip('"').removeprefix("registry.terraform.io/")] = body
    return out


def _allows(constraint: str, version: str) -> bool:
    """Terraform's `~> X.Y` (pessimistic) constraint, the only kind used here."""
    match = re.fullmatch(r"~>\s*(\d+)\.(\d+)", constraint.strip())
    assert match, f"unexpected constraint {constraint!r}"
    major, minor = int(match[1]), int(match[2])
    got = tuple(int(p) for p in version.split("."))
    return got[0] == major and got[1:] >= (minor,)


def test_every_required_provider_is_locked_within_its_constraints() -> None:
    required, locked = _required_providers(), _locked()
    assert set(required) == set(locked), (set(required), set(locked))
    for source, constraints in required.items():
        assert constraints, f"{source}: no version constraint in any module"
        version = locked[source]["version"]
        for constraint in constraints:
            assert _allows(constraint, version), (source, constraint, version)
        assert locked[source]["constraints"] == ", ".join(sorted(constraints))


def test_each_lock_holds_checksums_for_several_platforms() -> None:
    for source, body in _locked().items():
        hashes = body["hashes"]
        assert len([h for h in hashes if h.startswith("zh:")]) >= 10, source
        assert len([h for h in hashes if h.startswith("h1:")]) >= 3, source


@pytest.mark.parametrize(
    ("constraint", "version", "allowed"),
    [("~> 4.81", "4.81.0", True), ("~> 4.81", "4.80.9", False), ("~> 4.81", "5.0.0", False)],
)
def test_the_constraint_check_itself(constraint: str, version: str, allowed: bool) -> None:
    assert _allows(constraint, version) is allowed
