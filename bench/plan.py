"""How long and how hard each section runs: the full plan and the --quick smoke plan."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Plan:
    quick: bool = False
    profile_dir: Path | None = None
    keep_data: bool = False
    # (a) single sends: rounds of wrk against the bare app, OCM, OCM intake only
    connections: int = 32
    warmup_seconds: float = 2.0
    load_seconds: float = 5.0
    rounds: int = 3
    # (b) batch intake (the median of a few repeats)
    batch_size: int = 1000
    batches: int = 20
    batch_repeats: int = 3
    batch_clients: int = 3
    batch_seconds: float = 10.0
    # (c) dispatch throughput, then accept-to-provider latency at a fixed rate
    dispatch_messages: int = 20_000
    dispatch_timeout: float = 90.0
    paced_rate: float = 200.0
    paced_seconds: float = 10.0
    paced_timeout: float = 30.0

    def profile(self, section: str) -> Path | None:
        """Where py-spy writes this section's profile, when profiling."""
        return None if self.profile_dir is None else self.profile_dir / f"{section}.txt"


FULL = Plan()
QUICK = replace(
    FULL,
    quick=True,
    warmup_seconds=1.0,
    load_seconds=2.0,
    rounds=1,
    batches=3,
    batch_repeats=1,
    batch_seconds=3.0,
    dispatch_messages=2_000,
    dispatch_timeout=30.0,
    paced_seconds=2.0,
    paced_timeout=15.0,
)
