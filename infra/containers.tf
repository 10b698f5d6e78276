# The Cosmos DB containers, exactly as the code lays them out:
# shared/containers.py declares them and shared/adapters/azure/cosmos_layout.py
# derives partition keys, unique keys and indexing from that declaration.
# tests/infra compares this map with the layout; change one side alone and it fails.
#
# Partition keys start with the tenant; what grows without bound is keyed by
# (tenant_id, id), a hierarchical key (MultiHash, version 2), so no tenant is
# capped by one logical partition's 20 GB. Every key is version 2 (large
# partition key values hashed in full). `default_ttl = -1` turns TTL on with
# no default: a document's own `ttl` decides. Only what is queried is indexed.

locals {
  # Cosmos DB adds /"_etag"/? to every policy itself, and the provider drops it
  # when reading one back: naming it here would show 16 updates on every plan.
  cosmos_excluded_paths = ["/*"]

  cosmos_containers = {
    tenants = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/name/?", "/parent_id/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    apps = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/created_at/?", "/status/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # Read by id alone on every request (API-key prefix, channel id, email).
    directory = {
      partition_key_paths   = ["/id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/kind/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes     = []
      default_ttl           = -1
    }

    channels = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = ["/uq__name"]
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/name/?", "/status/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    messages = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths = [
        "/tenant_id/?", "/id/?", "/created_at/?", "/updated_at/?", "/status/?", "/channel_id/?",
        "/outbox_at/?", "/events_at/?", "/provider_message_id/?",
      ]
      excluded_paths = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
        [{ path = "/outbox_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
        [{ path = "/events_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    idempotency = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes     = []
      default_ttl           = -1
    }

    # Every management action of a tenant, kept OCM_AUDIT_RETENTION_DAYS (per-item ttl).
    audit = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/at/?", "/action/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # A tenant's users; the e-mail is unique across the platform through the Directory.
    users = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/email/?", "/status/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # Rate-limit windows and quota periods shared by every instance, read by id only.
    counters = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes     = []
      default_ttl           = -1
    }

    # A tenant's sender identities; the (channel, type, address) key is unique.
    terminals = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = ["/uq__key"]
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/channel_id/?", "/key/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    templates = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = ["/uq__name"]
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/name/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # Receivers who opted out, per channel type: read by a derived id on every send.
    opt_outs = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/channel_type/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # A tenant's webhook subscriptions (few; read whole, cached, by the fan-out).
    webhooks = {
      partition_key_paths   = ["/tenant_id"]
      partition_key_kind    = "Hash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # One per event and subscription, with its attempts; per-item ttl (OCM_EVENT_RETENTION_DAYS).
    webhook_deliveries = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/webhook_id/?", "/status/?", "/created_at/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/created_at", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # Every event of tenants with webhooks, for replay; per-item ttl.
    events = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/timestamp/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/timestamp", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }

    # The last inbound message per (channel, sender): WhatsApp's 24-hour window.
    contacts = {
      partition_key_paths   = ["/tenant_id", "/id"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes     = []
      default_ttl           = -1
    }

    # Analytics: hour buckets and the markers that count each fact once; one logical
    # partition per tenant and day, so a batch of facts is one transactional batch.
    # Markers carry a ttl and no indexed field but their ids.
    rollups = {
      partition_key_paths   = ["/tenant_id", "/partition"]
      partition_key_kind    = "MultiHash"
      partition_key_version = 2
      unique_key_paths      = []
      indexing_mode         = "consistent"
      included_paths        = ["/tenant_id/?", "/id/?", "/kind/?", "/hour/?"]
      excluded_paths        = local.cosmos_excluded_paths
      composite_indexes = [
        [{ path = "/hour", order = "Ascending" }, { path = "/id", order = "Ascending" }],
      ]
      default_ttl = -1
    }
  }
}
