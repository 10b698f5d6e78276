"""Optional py-spy profiles of `ocm serve` while a section loads it, and a text summary.

``python -m bench --profile DIR`` writes one collapsed-stack file per section
(py-spy's ``raw`` format: ``frame;frame;… count``, which speedscope and flamegraph.pl
read); ``python -m bench.profiling FILE…`` prints where the samples fall.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.servers import BenchError

RATE = 100  # samples per second
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    found = Path(sys.executable).with_name("py-spy")
    path = str(found) if found.exists() else shutil.which("py-spy")
    if path is None:
        raise BenchError("--profile needs py-spy: `.venv/bin/pip install py-spy`")
    return path


@contextmanager
def recording(pid: int, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy while the block runs (nothing when ``output`` is None)."""
    if output is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
    recorder = subprocess.Popen(
        [*argv, "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()


def _frames(stack: str) -> list[str]:
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def summarize(path: Path, top: int = 25) -> str:
    """The functions with the most samples: own (leaf) and inclusive, in % of all."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples at {RATE}/s (busy time only)", "", "own time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Summarize py-spy raw profiles.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(summarize(path, args.top), end="\n\n")


if __name__ == "__main__":
    main()
