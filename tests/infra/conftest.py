"""Both sides of the infra consistency checks, read once per test session."""

from __future__ import annotations

import pytest

from shared.adapters.azure.cosmos_layout import CosmosContainer, layout
from shared.containers import CONTAINERS
from tests.infra.deployment import Deployment, Trigger, code_triggers, read_deployment


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    """What infra/ deploys (tests that change it work on a copy)."""
    return read_deployment()


@pytest.fixture(scope="session")
def triggers() -> list[Trigger]:
    return code_triggers()


@pytest.fixture(scope="session")
def layouts() -> list[CosmosContainer]:
    return [layout(spec) for spec in CONTAINERS]
