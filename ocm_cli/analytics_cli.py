"""`ocm analytics TENANT`: a tenant's message counts and latency, as a table."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

import orjson

from shared import bootstrap
from shared.config import Settings
from shared.services.analytics import latency, query

COLUMNS = ("accepted", "sent", "delivered", "read", "failed", "expired", "cancelled")


def add_parser(sub: Any) -> None:
    command = sub.add_parser("analytics", help="a tenant's message counts and latency")
    command.add_argument("tenant_id")
    command.add_argument("--days", type=int, default=1, help="the last N days (default 1)")
    command.add_argument("--by", help=f"group by one of: {', '.join(query.GROUPS)}")
    command.add_argument("--json", action="store_true", help="print JSON")
    command.add_argument("--data-dir")


def table(counts: dict[str, Any], delays: dict[str, Any]) -> str:
    """One row per group (or one for all), the counts, the delivery rate and p95."""
    p95 = {g["group"]: g["p95"] for g in delays["groups"]}
    head = ["" if counts["group_by"] is None else counts["group_by"], *COLUMNS, "rate", "p95 s"]
    rows = [head]
    for line in counts["series"]:
        totals = line["totals"]
        rate = totals["delivered"] / totals["accepted"] if totals["accepted"] else None
        seconds = p95.get(line["group"])
        rows.append(
            [
                str(line["group"] if line["group"] is not None else "all"),
                *(str(totals[c]) for c in COLUMNS),
                "-" if rate is None else f"{rate:.1%}",
                "-" if seconds is None else f"{seconds:.2f}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


async def run(settings: Settings, args: argparse.Namespace) -> int:
    async with bootstrap.running(settings) as deps:
        end = deps.clock.now()
        start = end - timedelta(days=args.days)
        interval = "hour" if args.days <= 90 else "day"
        counts = await query.messages(
            deps,
            args.tenant_id,
            start=start,
            end=end,
            interval=interval,
            group_by=args.by,
            metrics=",".join(COLUMNS),
        )
        by = args.by if args.by in ("channel", "provider", "country") else None
        delays = await latency.latency(
            deps, args.tenant_id, start=max(start, end - timedelta(days=89)), end=end, group_by=by
        )
    if args.json:
        print(orjson.dumps({"messages": counts, "latency": delays}).decode())
    else:
        print(f"tenant {args.tenant_id}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
        print(table(counts, delays))
    return 0
