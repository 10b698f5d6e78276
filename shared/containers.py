"""The document containers and what their queries need indexed."""

from __future__ import annotations

from shared.ports import ContainerSpec

TENANTS = "tenants"
APPS = "apps"
DIRECTORY = "directory"
CHANNELS = "channels"
MESSAGES = "messages"
IDEMPOTENCY = "idempotency"
AUDIT = "audit"
COUNTERS = "counters"
USERS = "users"
TERMINALS = "terminals"
TEMPLATES = "templates"
OPT_OUTS = "opt_outs"
CONTACTS = "contacts"
WEBHOOKS = "webhooks"
WEBHOOK_DELIVERIES = "webhook_deliveries"
EVENTS = "events"
ROLLUPS = "rollups"

# Partition keys (Cosmos DB; see ContainerSpec): a tenant's own small sets share
# its partition; what grows without bound (messages, idempotency records) is keyed
# by tenant then id, so no tenant is ever capped by a logical partition's 20 GB;
# the Directory is read by id alone on every request, so it is keyed by id.
CONTAINERS: tuple[ContainerSpec, ...] = (
    ContainerSpec(TENANTS, indexed=("name", "parent_id"), ordered=("created_at",)),
    ContainerSpec(APPS, indexed=("created_at", "status"), ordered=("created_at",)),
    ContainerSpec(DIRECTORY, indexed=("kind",), partition_key=("id",)),
    ContainerSpec(
        CHANNELS,
        indexed=("name", "status", "created_at"),
        unique=("name",),
        ordered=("created_at",),
    ),
    ContainerSpec(
        MESSAGES,
        # updated_at: the analytics reconciliation finds an hour's messages by it.
        indexed=("created_at", "updated_at", "status", "channel_id"),
        sparse=("provider_message_id",),
        swept=("outbox_at", "events_at"),
        ordered=("created_at", "outbox_at", "events_at"),
        partition_key=("tenant_id", "id"),
    ),
    ContainerSpec(IDEMPOTENCY, partition_key=("tenant_id", "id")),
    # Grows with every management action, for as long as it is kept.
    ContainerSpec(
        AUDIT, indexed=("at", "action"), ordered=("at",), partition_key=("tenant_id", "id")
    ),
    ContainerSpec(USERS, indexed=("email", "status"), ordered=("created_at",)),
    # Rate-limit windows and quota periods, shared by every instance; read by id only.
    ContainerSpec(COUNTERS, partition_key=("tenant_id", "id")),
    # A tenant's sender identities; ``key`` (channel, type, address) is unique.
    ContainerSpec(
        TERMINALS,
        indexed=("channel_id", "key", "created_at"),
        unique=("key",),
        ordered=("created_at",),
    ),
    ContainerSpec(
        TEMPLATES, indexed=("name", "created_at"), unique=("name",), ordered=("created_at",)
    ),
    # Receivers who opted out, per channel type; read by an id derived from the
    # tenant, type and address (a point read per send), listed by type.
    ContainerSpec(
        OPT_OUTS,
        indexed=("channel_type", "created_at"),
        ordered=("created_at",),
        partition_key=("tenant_id", "id"),
    ),
    # The last inbound message per (channel, sender): WhatsApp's 24-hour window.
    ContainerSpec(CONTACTS, partition_key=("tenant_id", "id")),
    # A tenant's webhook subscriptions (few; read whole, cached, by the fan-out).
    ContainerSpec(WEBHOOKS, indexed=("created_at",), ordered=("created_at",)),
    # One per event and subscription, with its attempts; kept OCM_EVENT_RETENTION_DAYS.
    ContainerSpec(
        WEBHOOK_DELIVERIES,
        indexed=("webhook_id", "status", "created_at"),
        ordered=("created_at",),
        partition_key=("tenant_id", "id"),
    ),
    # Every event of tenants with webhooks, for replay; kept OCM_EVENT_RETENTION_DAYS.
    ContainerSpec(
        EVENTS, indexed=("timestamp",), ordered=("timestamp",), partition_key=("tenant_id", "id")
    ),
    # Analytics: hour buckets and the markers that count each fact once, one logical
    # partition per tenant and day (ids start with the day: ``2030-01-01|tn_...|h|...``), so
    # a fact's marker and its bucket are written in one transaction.
    ContainerSpec(
        ROLLUPS,
        # Sparse: the markers (most of the container) carry neither, so no index
        # entry is written for them (the embedded store's partial indexes).
        sparse=("kind", "hour"),
        ordered=("hour",),
        partition_key=("tenant_id", "partition"),
    ),
)
