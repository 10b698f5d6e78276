"""A platform on the embedded backend in a temporary directory, and an HTTP client
for its API in process (httpx's ASGI transport): the shared fixtures of the API's
integration tests. A module may override either (other settings, another peer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.services.deps import Deps
from shared.services.onboarding import signup


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


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The API of a platform in production mode (https only, no private egress, no
    Host-derived URLs) and the API key of its tenant "acme"."""
    prod = bootstrap.build(
        Settings(
            OCM_ENV="production",
            OCM_SECRET_KEY=Fernet.generate_key().decode(),
            OCM_DATA_DIR=tmp_path / "production",
            OCM_RATE_LIMIT_PER_SECOND=0,
        )
    )
    key = {"X-API-Key": (await signup.create_tenant(prod, "acme")).api_key}
    transport = httpx.ASGITransport(app=create_app(lambda: prod))
    async with httpx.AsyncClient(transport=transport, base_url="https://ocm") as client:
        yield client, key
    await bootstrap.close(prod)
