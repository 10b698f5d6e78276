"""The document containers and what their queries need indexed."""

from __future__ import annotations

from shared.ports import ContainerSpec

TENANTS = "tenants"
APPS = "apps"
DIRECTORY = "directory"
CHANNELS = "channels"
MESSAGES = "messages"
IDEMPOTENCY = "idempotency"

CONTAINERS: tuple[ContainerSpec, ...] = (
    ContainerSpec(TENANTS, indexed=("name",)),
    ContainerSpec(APPS, indexed=("created_at",)),
    ContainerSpec(DIRECTORY, indexed=("kind",)),
    ContainerSpec(CHANNELS, indexed=("name", "created_at"), unique=("name",)),
    ContainerSpec(
        MESSAGES,
        indexed=("created_at", "status", "channel_id"),
        sparse=("provider_message_id",),
        swept=("outbox_at", "events_at"),
    ),
    ContainerSpec(IDEMPOTENCY),
)
