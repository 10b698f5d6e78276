"""Audit the locked dependencies (``requirements.lock``) for published advisories.

    python -m tools.audit                  # what `make test` runs first
    python -m tools.audit --offline        # only the committed snapshot, no network
    python -m tools.audit --write-snapshot # refresh security/advisories.snapshot.json

The advisories are PyPI's own (its JSON API's ``vulnerabilities``, drawn from the PyPA
advisory database through OSV — what ``pip-audit`` reads by default). For each locked
``name==version`` the audit asks for that release (``/pypi/NAME/VERSION/json``); where
that answer is not to be had (this workplace's network passes only PyPI's project
pages) and the locked version is the latest, the project's page (``/pypi/NAME/json``),
whose ``vulnerabilities`` are the latest release's. A locked version that is neither
answerable nor the latest is reported as not audited, never as clean.

Without the network the committed snapshot stands in (its date is printed): the audit
then covers the lock as it was when the snapshot was written, and a pin the snapshot
does not know fails.

An advisory fails the run unless ``security/accepted-advisories.toml`` lists its id for
that package with a reason (what it affects, why it cannot be fixed, why OCM is not
exposed). Exit codes: 0 clean or accepted, 1 an advisory not accepted (or a pin the
offline snapshot lacks), 2 a file is malformed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ACCEPTED = ROOT / "security" / "accepted-advisories.toml"
SNAPSHOT = ROOT / "security" / "advisories.snapshot.json"
PYPI = "https://pypi.org"


class Malformed(Exception):
    """A lock, accepted list or snapshot the audit cannot read."""


def canonical(name: str) -> str:
    """A project name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(text: str) -> dict[str, str]:
    """``name==version`` per line (comments and blanks aside)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise Malformed(f"requirements.lock:{number}: not name==version: {raw!r}")
        pins[canonical(name.strip())] = version.strip()
    return pins


@dataclass(frozen=True)
class Accepted:
    id: str
    package: str
    reason: str


def read_accepted(text: str) -> list[Accepted]:
    try:
        entries = tomllib.loads(text).get("accepted", [])
    except tomllib.TOMLDecodeError as exc:
        raise Malformed(f"accepted-advisories.toml: {exc}") from None
    found = []
    for entry in entries:
        missing = [k for k in ("id", "package", "reason") if not str(entry.get(k, "")).strip()]
        if missing:
            raise Malformed(f"accepted-advisories.toml: an entry lacks {', '.join(missing)}")
        found.append(Accepted(entry["id"], canonical(entry["package"]), entry["reason"].strip()))
    return found


@dataclass
class Finding:
    """What is known of one pin: its advisories, and where that came from."""

    package: str
    version: str
    source: str  # "release", "latest", "snapshot" or "none"
    advisories: list[dict[str, Any]] = field(default_factory=list)
    latest: str | None = None


def _same(one: str, other: str) -> bool:
    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return one == other


def _advisories(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(v.get("id", "")),
            "aliases": list(v.get("aliases") or []),
            "fixed_in": list(v.get("fixed_in") or []),
            "summary": str(v.get("summary") or v.get("details") or "")[:200],
        }
        for v in page.get("vulnerabilities") or []
        if not v.get("withdrawn")
    ]


async def _look_up(client: httpx.AsyncClient, package: str, version: str) -> Finding:
    release = await client.get(f"/pypi/{package}/{version}/json")
    if release.status_code == 200:
        return Finding(package, version, "release", _advisories(release.json()))
    project = await client.get(f"/pypi/{package}/json")
    if project.status_code == 404:  # not a PyPI project (a private one): no advisories here
        return Finding(package, version, "none")
    project.raise_for_status()
    page = project.json()
    latest = str(page.get("info", {}).get("version", ""))
    if _same(latest, version):
        return Finding(package, version, "latest", _advisories(page), latest)
    return Finding(package, version, "none", [], latest)


async def look_up(pins: dict[str, str], base_url: str = PYPI) -> list[Finding]:
    """Every pin's advisories, from PyPI (raises httpx.HTTPError if it cannot be asked)."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base_url, timeout=20, limits=limits) as client:
        return list(await asyncio.gather(*(_look_up(client, p, v) for p, v in pins.items())))


def from_snapshot(pins: dict[str, str], snapshot: dict[str, Any]) -> list[Finding]:
    known = snapshot.get("packages", {})
    findings = []
    for package, version in pins.items():
        entry = known.get(f"{package}=={version}")
        if entry is None:
            findings.append(Finding(package, version, "missing"))
        else:
            source = "snapshot" if entry["source"] != "none" else "none"
            findings.append(Finding(package, version, source, entry["advisories"]))
    return findings


def snapshot_of(findings: list[Finding], now: datetime) -> dict[str, Any]:
    return {
        "written_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": PYPI,
        "packages": {
            f"{f.package}=={f.version}": {"source": f.source, "advisories": f.advisories}
            for f in sorted(findings, key=lambda f: f.package)
        },
    }


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def code(self) -> int:
        return 1 if self.failures else 0


def judge(findings: list[Finding], accepted: list[Accepted]) -> Report:
    report = Report()
    used: set[tuple[str, str]] = set()
    for f in findings:
        if f.source == "missing":
            report.failures.append(f"{f.package}=={f.version}: not in the offline snapshot")
        elif f.source == "none":
            report.unaudited.append(f"{f.package}=={f.version} (latest {f.latest or '?'})")
        for advisory in f.advisories:
            names = {advisory["id"], *advisory["aliases"]}
            match = next((a for a in accepted if a.package == f.package and a.id in names), None)
            line = (
                f"{f.package}=={f.version}: {advisory['id']} "
                f"(fixed in {', '.join(advisory['fixed_in']) or 'no release yet'}) "
                f"{advisory['summary']}"
            )
            if match is None:
                report.failures.append(line)
            else:
                used.add((match.package, match.id))
                report.accepted.append(f"{line} — accepted: {match.reason}")
    report.stale = [f"{a.package}: {a.id}" for a in accepted if (a.package, a.id) not in used]
    return report


def _print(report: Report, where: str) -> None:
    out = sys.stdout
    for line in report.failures:
        print(f"ADVISORY {line}", file=out)
    for line in report.accepted:
        print(f"accepted {line}", file=out)
    for line in report.stale:
        print(f"note: accepted but no longer found (remove it?): {line}", file=out)
    if report.unaudited:
        print(
            f"note: {len(report.unaudited)} pins are older than their latest release, "
            "whose advisories PyPI did not answer for here (not audited): "
            + ", ".join(report.unaudited),
            file=out,
        )
    verdict = "FAILED" if report.failures else "ok"
    print(f"dependency audit {verdict} ({where})", file=out)


def main(argv: list[str] | None = None, *, base_url: str = PYPI) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__)
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument("--accepted", type=Path, default=ACCEPTED)
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--offline", action="store_true", help="only the snapshot")
    parser.add_argument("--write-snapshot", action="store_true")
    args = parser.parse_args(argv)
    try:
        pins = read_lock(args.lock.read_text())
        accepted = read_accepted(args.accepted.read_text() if args.accepted.exists() else "")
        findings: list[Finding] | None = None
        where = ""
        if not args.offline:
            try:
                findings = asyncio.run(look_up(pins, base_url))
                where = f"{len(pins)} pins, asked {base_url}"
            except httpx.HTTPError as exc:
                print(f"note: {base_url} could not be asked ({exc!r}); the snapshot stands in")
        if findings is None:
            snapshot = json.loads(args.snapshot.read_text())
            findings = from_snapshot(pins, snapshot)
            where = f"{len(pins)} pins, offline snapshot of {snapshot.get('written_at', '?')}"
        elif args.write_snapshot:
            written = snapshot_of(findings, datetime.now(UTC))
            args.snapshot.write_text(json.dumps(written, indent=1, sort_keys=True) + "\n")
    except (Malformed, OSError, ValueError, KeyError) as exc:
        print(f"dependency audit cannot run: {exc}", file=sys.stderr)
        return 2
    report = judge(findings, accepted)
    _print(report, where)
    return report.code


if __name__ == "__main__":
    sys.exit(main())
