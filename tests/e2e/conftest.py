"""`ocm serve` as a subprocess on a free loopback port, driven with httpx."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"delivered", "read", "failed", "expired", "cancelled", "received"}

FAST_SETTINGS = {
    "OCM_RETRY_BASE_SECONDS": "0.2",
    "OCM_RETRY_MAX_SECONDS": "1",
    "OCM_PAUSED_RECHECK_SECONDS": "0.3",
    "OCM_OUTBOX_GRACE_SECONDS": "2",
    "OCM_OUTBOX_SWEEP_SCHEDULE": "*/1 * * * * *",
    "OCM_LOOKUP_CACHE_SECONDS": "1",
    "OCM_LOG_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


OCM = [str(Path(sys.executable).with_name("ocm"))]
"""The installed console script, as a user runs it (`pip install -e .` makes it)."""


def ocm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OCM, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Server:
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path = self.data_dir / f"serve-{time.monotonic_ns()}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*OCM, "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ocm serve exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"ocm serve did not start:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def tenant(self, name: str = "acme") -> Client:
        result = ocm("tenant", "create", name, "--json", env=self.env)
        assert result.returncode == 0, result.stderr
        created = json.loads(result.stdout)
        return Client(self, created["tenant_id"], created["api_key"])


@dataclass
class Client:
    server: Server
    tenant_id: str
    api_key: str

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"X-API-Key": self.api_key}, timeout=30
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.http() as client:
            return client.request(method, path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def channel(self, name: str = "sandbox", **body: Any) -> dict[str, Any]:
        response = self.post("/api/v1/channels", json={"name": name, "type": "sandbox", **body})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def send(self, **message: Any) -> dict[str, Any]:
        body = {
            "channel": "sandbox",
            "receiver": {"type": "phone", "address": "+4791234567"},
            "content": {"type": "text", "text": "hello"},
            **message,
        }
        response = self.post("/api/v1/messages", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait_for(
        self,
        message_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda m: m["status"] in TERMINAL,
        timeout: float = 20,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self.get(f"/api/v1/messages/{message_id}").json()
            if until(message):
                return dict(message)
            if time.monotonic() > deadline:
                raise AssertionError(f"message never reached the state: {message}")
            time.sleep(0.1)


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCM_")}
    env.update(FAST_SETTINGS)
    env.update({"OCM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def serving(factory: pytest.TempPathFactory, name: str, **extra: str) -> Iterator[Server]:
    """A fixture's body: `ocm serve` in a fresh data directory, with `extra` settings
    over the fast ones, stopped afterwards unless a test stopped it already."""
    data_dir = factory.mktemp(name)
    srv = Server(data_dir=data_dir, port=free_port(), env=server_env(data_dir, **extra))
    srv.start()
    yield srv
    if srv.process and srv.process.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory, "ocm")


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    acme = server.tenant("acme")
    acme.channel("sandbox")
    return acme
