"""`python -m bench` (`make bench`): run the sections, print one JSON document.

Progress goes to stderr; stdout carries only the JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import dispatch, intake, single_send, webhooks
from bench.plan import FULL, QUICK, Plan
from bench.servers import BenchError, ocm_settings

SECTIONS = ("single_send", "batch_intake", "dispatch", "accept_to_provider", "webhooks")

# (section, figure, comparison, target)
TARGETS = (
    ("single_send", "ratio", ">=", 0.40),
    ("batch_intake", "ocm_msgs_per_s", ">=", 20_000),
    ("dispatch", "msgs_per_s", ">=", 1_000),
    ("accept_to_provider", "p99_ms", "<", 250),
    ("webhooks", "ratio", ">=", 0.60),
)


def _runners(results: dict[str, Any]) -> dict[str, Callable[[Plan], dict[str, Any]]]:
    def intake_rate() -> float | None:
        return (results.get("batch_intake") or {}).get("ocm_msgs_per_s")

    return {
        "single_send": single_send.run,
        "batch_intake": intake.run,
        "dispatch": lambda plan: dispatch.throughput(plan, intake_rate()),
        "accept_to_provider": dispatch.latency,
        "webhooks": webhooks.run,
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for section, figure, comparison, target in TARGETS:
        if section not in results:
            continue
        value = results[section].get(figure)
        met = None
        if value is not None:
            met = value >= target if comparison == ">=" else value < target
        goal = f"{comparison} {target}"
        out[f"{section}.{figure}"] = {"target": goal, "value": value, "met": met}
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only", help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write a py-spy profile per section to DIR"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the servers' data dirs")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = [s for s in SECTIONS if s in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = replace(QUICK if args.quick else FULL, profile_dir=args.profile)
    plan = replace(plan, keep_data=args.keep_data)
    started = time.monotonic()
    host = machine()
    results: dict[str, Any] = {}
    failed = False
    runners = _runners(results)
    for section in args.sections:
        print(f"bench: {section} …", file=sys.stderr, flush=True)
        section_started = time.monotonic()
        try:
            results[section] = runners[section](plan)
        except BenchError as exc:
            failed = True
            results[section] = {"error": str(exc)}
            print(f"bench: {section} failed: {exc}", file=sys.stderr)
        took = time.monotonic() - section_started
        print(f"bench: {section} done in {took:.0f} s", file=sys.stderr, flush=True)
    host["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    document = {
        "machine": host,
        "quick": plan.quick,
        "ocm_settings": ocm_settings(),
        **results,
        "targets": targets(results),
        "bench_seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(document, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
