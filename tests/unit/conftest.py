"""Services wired to in-memory fakes: no I/O, a clock the test moves."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from shared.adapters.providers import discover
from shared.adapters.providers.sandbox import SandboxSender
from shared.config import Settings
from shared.containers import MESSAGES
from shared.domain.channels import Catalog, ChannelCreate
from shared.domain.models import Document
from shared.services.channels import channels
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.fakes import FakeClock, FakeDocumentStore, FakeQueue, FakeSecretStore


def sandbox_message(**fields: Any) -> dict[str, Any]:
    """A valid outbound message on the world's sandbox channel, with ``fields`` over it."""
    return {
        "channel": "sandbox",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
        **fields,
    }


SETTINGS = Settings(OCM_MAX_ATTEMPTS=3, OCM_RETRY_BASE_SECONDS=2, OCM_RETRY_MAX_SECONDS=60)


@dataclass
class World:
    deps: Deps
    clock: FakeClock
    queue: FakeQueue
    tenant_id: str


@pytest.fixture
async def world() -> World:
    clock = FakeClock()
    queue = FakeQueue(
        clock, topics={SETTINGS.OCM_EVENTS_TOPIC: [SETTINGS.OCM_EVENTS_LOG_SUBSCRIPTION]}
    )
    deps = Deps(
        settings=SETTINGS,
        store=FakeDocumentStore(clock=clock),
        queue=queue,
        secrets=FakeSecretStore(),
        clock=clock,
        senders={"sandbox": SandboxSender(clock)},
        catalog=Catalog(spec for p in discover() for spec in p.specs),
        rng=random.Random(7),
    )
    created = await signup.create_tenant(deps, "acme")
    tenant_id = created.tenant["id"]
    await channels.create_channel(deps, tenant_id, ChannelCreate(name="sandbox", type="sandbox"))
    return World(deps=deps, clock=clock, queue=queue, tenant_id=tenant_id)


async def stored(world: World, message_id: str) -> Document:
    """The world's tenant's message document, which must exist."""
    doc = await world.deps.store.read(MESSAGES, world.tenant_id, message_id)
    assert doc is not None
    return doc
