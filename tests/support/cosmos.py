"""The local Cosmos DB server of our tests (@vercel/cosmosdb-server, see
../shared/ENVIRONMENT.md): installed with npm into .cache/ on first use, started
on a free loopback port, data in memory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@vercel/cosmosdb-server@1.0.1"
PREFIX = ROOT / ".cache" / "cosmosdb-server"
MODULES = PREFIX / "node_modules"
SCRIPT = Path(__file__).with_name("cosmos_server.js")
# The server checks no signature; the client needs a key of the right shape.
KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


class CosmosServerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class CosmosServer:
    endpoint: str
    key: str = KEY

    def throttle(self, count: int, retry_after_ms: int = 100) -> None:
        """Answer the next ``count`` document requests 429 with that advice."""
        answer = httpx.post(
            f"{self.endpoint}_test/throttle",
            json={"count": count, "retry_after_ms": retry_after_ms},
        )
        answer.raise_for_status()

    def throttled(self) -> dict[str, int]:
        """``{"left": …, "answered": …}`` of the last schedule."""
        answer = httpx.get(f"{self.endpoint}_test/throttle")
        answer.raise_for_status()
        counts: dict[str, int] = answer.json()
        return counts


def install() -> None:
    if (MODULES / "@vercel" / "cosmosdb-server" / "lib" / "index.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise CosmosServerUnavailable("npm is not installed (Node 20 provides it)")
    PREFIX.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "--silent", PACKAGE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise CosmosServerUnavailable(f"npm install {PACKAGE} failed: {result.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running() -> Iterator[CosmosServer]:
    install()
    node = shutil.which("node")
    if node is None:
        raise CosmosServerUnavailable("node is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [node, str(SCRIPT), str(MODULES), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise CosmosServerUnavailable("the local Cosmos server did not start") from None
                time.sleep(0.05)
        yield CosmosServer(endpoint=f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
