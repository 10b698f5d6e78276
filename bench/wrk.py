"""wrk, the HTTP load generator: found (or installed with apt-get), driven with a Lua
script that sets the POST body and headers and prints its summary as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import BenchError

MARKER = "BENCH_WRK_JSON "

_LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"duration_us": %%d, "requests": %%d, "non_2xx_3xx": %%d, ' ..
    '"connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, "timeouts": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}\\n',
    summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    seconds: float
    requests: int
    accepted: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def _apt_get(*args: str) -> None:
    subprocess.run(["apt-get", *args], capture_output=True, timeout=600, check=True)


def ensure_wrk() -> str:
    """The path of wrk; installs the Debian package when it is missing (as root), running
    `apt-get update` first only if the plain install fails."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk is missing; running `apt-get install -y wrk`", file=sys.stderr)
    try:
        try:
            _apt_get("install", "-y", "wrk")
        except subprocess.CalledProcessError:
            _apt_get("update")
            _apt_get("install", "-y", "wrk")
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "stderr", None) or b"").decode(errors="replace")[-2000:]
        raise BenchError(
            "wrk is not installed and `apt-get install -y wrk` failed (it needs root and "
            f"the Debian package registry): {exc}\n{detail}".strip()
        ) from exc
    found = shutil.which("wrk")
    if found is None:
        raise BenchError("`apt-get install -y wrk` succeeded but wrk is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return ((result.stdout or result.stderr).strip().splitlines() or ["?"])[0].strip()


def lua_script(body: bytes, headers: dict[str, str]) -> str:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body cannot be embedded in a Lua long string")
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    return _LUA % {"body": text, "headers": lines, "marker": MARKER}


def run(
    wrk: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
) -> WrkResult:
    """One wrk run of POSTs to ``url``; accepted means a 2xx or 3xx answer."""
    with tempfile.TemporaryDirectory(prefix="ocm-bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_script(body, headers))
        argv = [
            wrk,
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            "--latency",
            f"--script={script}",
            url,
        ]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    summary = _summary(result.stdout)
    if result.returncode != 0 or summary is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return _result(summary)


def _summary(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            parsed: dict[str, Any] = json.loads(line.removeprefix(MARKER))
            return parsed
    return None


def _result(s: dict[str, Any]) -> WrkResult:
    errors = sum(s[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return WrkResult(
        seconds=s["duration_us"] / 1e6,
        requests=s["requests"],
        accepted=s["requests"] - s["non_2xx_3xx"],
        errors=errors + s["non_2xx_3xx"],
        p50_ms=s["p50_us"] / 1000,
        p90_ms=s["p90_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
        max_ms=s["max_us"] / 1000,
    )
