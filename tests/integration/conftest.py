"""A platform on the embedded backend in a temporary directory, and an HTTP client
for its API in process (httpx's ASGI transport): the shared fixtures of the API's
integration tests. A module may override either (other settings, another peer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.services.deps import Deps


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The platform's settings (a module overrides this fixture to change some)."""
    return Settings(OCM_DATA_DIR=tmp_path)


@pytest.fixture
def deps(settings: Settings) -> Iterator[Deps]:
    built = bootstrap.build(settings)
    yield built
    for closer in built.closers:
        closer()


@pytest.fixture
async def api(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(lambda: deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
        yield client
