"""Both sides of the infra consistency checks, read once per test session."""

from __future__ import annotations

import pytest

from shared.adapters.azure.cosmos_layout import CosmosContainer, layout
from shared.containers import CONTAINERS
from tests.infra.deployment import Deployment, Trigger, code_triggers, read_deployment

# Every value of infra's scale_tier variable: each consistency test runs on each.
SCALE_TIERS = ("serverless", "provisioned")


@pytest.fixture(scope="session", params=SCALE_TIERS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """What infra/ deploys with scale_tier set to each tier in turn (tests that
    change it work on a copy)."""
    return read_deployment(variables={"scale_tier": request.param})


@pytest.fixture(scope="session")
def triggers() -> list[Trigger]:
    return code_triggers()


@pytest.fixture(scope="session")
def layouts() -> list[CosmosContainer]:
    return [layout(spec) for spec in CONTAINERS]
