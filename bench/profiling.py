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


# Leaves where a worker thread waits for work: py-spy does not always see them as idle.
IDLE_LEAVES = frozenset({"Condition.wait (threading.py)", "Queue.get (queue.py)"})
_OURS = ("shared/", "functions/", "function_app.py")
_FILE = re.compile(r"\((.+?)\)$")


def _frames(stack: str) -> list[str]:
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def _area(frame: str) -> str:
    """The package (or our own layer) a frame's file belongs to."""
    match = _FILE.search(frame)
    path = match.group(1) if match else "?"
    parts = path.split("/")
    depth = 3 if path.startswith("shared/adapters/") else 2 if path.startswith(_OURS) else 1
    return "/".join(parts[:depth]).removesuffix(".py")


def _table(title: str, counter: Counter[str], total: int, top: int) -> list[str]:
    rows = [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return ["", title, *rows]


def summarize(path: Path, top: int = 25) -> str:
    """Where the busy samples fall: by package, by function (own time), and through our
    own functions (inclusive time), in % of all busy samples."""
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), _frames(stack)
        if frames[-1] in IDLE_LEAVES:
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        areas[_area(frames[-1])] += count
        for frame in set(frames):
            if _area(frame).startswith(_OURS):
                ours[frame] += count
    if not total:
        return f"{path}: no busy samples"
    head = f"{path}: {total} busy samples at {RATE}/s ({idle} idle worker-thread samples left out)"
    return "\n".join(
        [
            head,
            *_table("own time by package:", areas, total, top),
            *_table("own time by function:", own, total, top),
            *_table("inclusive time of our functions:", ours, total, top),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Summarize py-spy raw profiles.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(summarize(path, args.top), end="\n\n")


if __name__ == "__main__":
    main()
