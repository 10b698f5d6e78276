"""`python -m tools.audit` (run first by `make test`): the locked dependencies against
PyPI's advisories, a peer following PyPI's JSON API on loopback standing in for it."""

from __future__ import annotations

import json
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.peers.pypi import PypiPeer, advisory
from tools import audit

ROOT = Path(__file__).resolve().parents[2]
FLAW = advisory("PYSEC-2099-1", fixed_in=["3.1.6"], aliases=["CVE-2099-0001"])


@pytest.fixture
def pypi() -> Iterator[PypiPeer]:
    peer = PypiPeer(
        releases={
            "jinja2": {"3.1.4": [FLAW], "3.1.6": []},
            "httpx": {"0.28.1": []},
        }
    )
    with peer.running():
        yield peer


def run(tmp_path: Path, url: str, lock: str, accepted: str = "", *extra: str) -> int:
    (tmp_path / "lock").write_text(lock)
    (tmp_path / "accepted.toml").write_text(accepted)
    files = ["--lock", str(tmp_path / "lock"), "--accepted", str(tmp_path / "accepted.toml")]
    snapshot = ["--snapshot", str(tmp_path / "snapshot.json")]
    return audit.main([*files, *snapshot, *extra], base_url=url)


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_advisory_for_a_locked_release_fails_the_audit(
    pypi: PypiPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(tmp_path, pypi.url, "# pins\nJinja2==3.1.4\nhttpx==0.28.1\n")
    out = capsys.readouterr().out
    assert code == 1
    assert "ADVISORY jinja2==3.1.4: PYSEC-2099-1 (fixed in 3.1.6)" in out
    assert "httpx" not in out.split("dependency audit")[0]
    assert {r.path for r in pypi.requests} >= {"/pypi/jinja2/3.1.4/json", "/pypi/httpx/0.28.1/json"}


def test_an_accepted_advisory_passes_with_its_reason_by_id_or_alias(
    pypi: PypiPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = (
        '[[accepted]]\nid = "CVE-2099-0001"\npackage = "jinja2"\n'
        'reason = "held back by X; OCM renders only in its sandbox"\n'
    )
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", accepted) == 0
    out = capsys.readouterr().out
    assert "accepted jinja2==3.1.4: PYSEC-2099-1" in out
    assert "held back by X; OCM renders only in its sandbox" in out
    assert "dependency audit ok" in out


def test_an_acceptance_without_a_reason_is_refused(pypi: PypiPeer, tmp_path: Path) -> None:
    accepted = '[[accepted]]\nid = "PYSEC-2099-1"\npackage = "jinja2"\nreason = " "\n'
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", accepted) == 2


def test_an_acceptance_for_another_package_does_not_cover_this_one(
    pypi: PypiPeer, tmp_path: Path
) -> None:
    accepted = '[[accepted]]\nid = "PYSEC-2099-1"\npackage = "httpx"\nreason = "no"\n'
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", accepted) == 1


def test_without_release_pages_the_latest_is_audited_and_older_pins_are_said_unaudited(
    pypi: PypiPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """This workplace's network answers only PyPI's project pages: their
    vulnerabilities are the latest release's, so only a pin at the latest is audited
    by them, and an older pin is reported as not audited rather than as clean."""
    pypi.per_release = False
    pypi.releases["httpx"]["0.28.1"] = [advisory("GHSA-xxxx", fixed_in=[])]
    assert run(tmp_path, pypi.url, "httpx==0.28.1\n") == 1
    assert "ADVISORY httpx==0.28.1: GHSA-xxxx (fixed in no release yet)" in capsys.readouterr().out
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n") == 0
    out = capsys.readouterr().out
    assert "not audited" in out and "jinja2==3.1.4 (latest 3.1.6)" in out


def test_offline_the_snapshot_stands_in_and_a_pin_it_lacks_fails(
    pypi: PypiPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = "jinja2==3.1.6\nhttpx==0.28.1\n"
    assert run(tmp_path, pypi.url, lock, "", "--write-snapshot") == 0
    written = json.loads((tmp_path / "snapshot.json").read_text())
    assert set(written["packages"]) == {"jinja2==3.1.6", "httpx==0.28.1"}
    capsys.readouterr()
    assert run(tmp_path, closed_port(), lock) == 0  # the network is down
    out = capsys.readouterr().out
    assert "could not be asked" in out and f"snapshot of {written['written_at']}" in out
    assert run(tmp_path, pypi.url, lock, "", "--offline") == 0
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", "", "--offline") == 1
    assert "jinja2==3.1.4: not in the offline snapshot" in capsys.readouterr().out


def test_a_snapshot_keeps_the_advisories_it_saw(pypi: PypiPeer, tmp_path: Path) -> None:
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", "", "--write-snapshot") == 1
    assert run(tmp_path, pypi.url, "jinja2==3.1.4\n", "", "--offline") == 1


def test_a_malformed_lock_is_said_so(pypi: PypiPeer, tmp_path: Path) -> None:
    assert run(tmp_path, pypi.url, "jinja2>=3\n") == 2


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = audit.read_lock((ROOT / "requirements.lock").read_text())
    for spec in map(Requirement, declared):
        name = audit.canonical(spec.name)
        assert name in pins, f"{name} is not in requirements.lock (make lock)"
        assert spec.specifier.contains(pins[name]), f"{name}=={pins[name]} is not {spec}"


def test_the_committed_snapshot_and_acceptances_cover_the_lock() -> None:
    """So that the audit can run offline on the lock as committed; after `make lock`,
    `python -m tools.audit --write-snapshot` refreshes the snapshot."""
    pins = audit.read_lock((ROOT / "requirements.lock").read_text())
    snapshot = json.loads((ROOT / "security" / "advisories.snapshot.json").read_text())
    missing = [p for p in audit.from_snapshot(pins, snapshot) if p.source == "missing"]
    assert missing == []
    audit.read_accepted((ROOT / "security" / "accepted-advisories.toml").read_text())
