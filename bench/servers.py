"""The servers under test: `ocm serve` on a fresh data directory, and the bare baseline.

Each runs as a subprocess on a free 127.0.0.1 port and is stopped with SIGINT, then
killed if it has not exited in time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
_OWN_SETTINGS = ("OCM_DATA_DIR", "OCM_HOST", "OCM_PORT")


class Tenant(NamedTuple):
    tenant_id: str
    api_key: str


class BenchError(RuntimeError):
    """Something the bench needs is missing or broke; the message says what."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ocm_command() -> list[str]:
    """The installed `ocm` console script, preferably the one beside this Python."""
    script = Path(sys.executable).with_name("ocm")
    found = str(script) if script.exists() else shutil.which("ocm")
    if found is None:
        raise BenchError("the `ocm` command is not installed; run `make install` first")
    return [found]


def ocm_settings() -> dict[str, str]:
    """The caller's OCM_* settings that `ocm serve` inherits (reported with the figures)."""
    return {k: v for k, v in os.environ.items() if k.startswith("OCM_") and k not in _OWN_SETTINGS}


def _env(data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OWN_SETTINGS}
    env["PYTHONUNBUFFERED"] = "1"
    # The load comes from one application: a limit far above it keeps the limiter's
    # work in every request without refusing any (unless the caller sets one).
    env.setdefault("OCM_RATE_LIMIT_PER_SECOND", "1000000")
    env.setdefault("OCM_RATE_LIMIT_BURST", "1000000")
    env.setdefault("OCM_TENANT_RATE_LIMIT_PER_SECOND", "1000000")
    env.setdefault("OCM_TENANT_RATE_LIMIT_BURST", "1000000")
    env.setdefault("OCM_MESSAGE_RATE_PER_SECOND", "1000000")
    env.setdefault("OCM_MESSAGE_RATE_BURST", "1000000")
    if data_dir is not None:
        env["OCM_DATA_DIR"] = str(data_dir)
    return env


class Server:
    """One server subprocess, its port and its log file."""

    def __init__(self, argv: list[str], port: int, log_path: Path, env: dict[str, str]) -> None:
        self.argv, self.port, self.log_path, self.env = argv, port, log_path, env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.argv[0]} exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise BenchError(f"{self.argv[0]} did not answer within {START_TIMEOUT} s")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"the server died during the run:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class OcmServer(Server):
    """`ocm serve` on its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        port = free_port()
        argv = [*ocm_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)]
        super().__init__(argv, port, data_dir / "serve.log", _env(data_dir))
        self.data_dir = data_dir

    @property
    def database(self) -> Path:
        return self.data_dir / "ocm.sqlite3"

    def tenant_with_sandbox(self, name: str = "bench") -> Tenant:
        """Create a tenant and its sandbox channel."""
        result = subprocess.run(
            [*ocm_command(), "tenant", "create", name, "--json", "--data-dir", str(self.data_dir)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"ocm tenant create failed:\n{result.stderr}")
        created = json.loads(result.stdout)
        api_key = str(created["api_key"])
        response = httpx.post(
            f"{self.url}/api/v1/channels",
            json={"name": "sandbox", "type": "sandbox"},
            headers={"X-API-Key": api_key},
            timeout=30,
        )
        if response.status_code != 201:
            raise BenchError(f"creating the sandbox channel failed: {response.text}")
        return Tenant(str(created["tenant_id"]), api_key)


@contextmanager
def ocm_server(keep: bool = False) -> Iterator[OcmServer]:
    """A started `ocm serve` on a fresh temporary data directory; stopped and removed after."""
    data_dir = Path(tempfile.mkdtemp(prefix="ocm-bench-"))
    server = OcmServer(data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if keep:
            print(f"bench: kept {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def bare_server() -> Iterator[Server]:
    """The bare FastAPI endpoint of bench/bare_app.py, started and stopped."""
    log_dir = Path(tempfile.mkdtemp(prefix="ocm-bench-bare-"))
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    server = Server(argv, port, log_dir / "bare.log", _env())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
