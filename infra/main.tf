# OCM on Azure: one Flex Consumption Function App on Service Bus, Cosmos DB and
# Key Vault, with Application Insights. Every connection is identity-based: the
# app's system-assigned identity holds data-plane roles only (roles.tf).

data "azurerm_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 6
  upper   = false
  special = false
}

locals {
  base_name = "${var.name_prefix}-${random_string.suffix.result}"

  # The entity names are the code's defaults (shared/config.py); the triggers in
  # function_app.py find them through the app settings below (%OCM_OUTBOUND_QUEUE%).
  service_bus_names = {
    outbound_queue          = "ocm-outbound"
    provider_events_queue   = "ocm-provider-events"
    events_topic            = "ocm-events"
    events_log_subscription = "ocm-events-log"
    webhooks_subscription   = "ocm-webhooks"
    analytics_subscription  = "ocm-analytics"
    webhook_queue           = "ocm-webhook-deliveries"
  }

  # Deliveries before Service Bus dead-letters a message (then the
  # dead-letter triggers mark it failed); OCM_QUEUE_MAX_DELIVERY_COUNT says the same.
  max_delivery_count = 10

  # Peek-lock of every queue and subscription. A dispatch calls one provider
  # with its own timeouts (well under a minute); the Functions host renews the
  # lock while the function runs (host.json maxAutoLockRenewalDuration, 5 min,
  # = functionTimeout), so a short lock only bounds how soon a crashed
  # instance's message is redelivered.
  lock_duration = "PT1M"
  lock_seconds  = 60

  # The events topic's subscriptions (module servicebus); scale.tf counts them too:
  # every event sent to the topic is evaluated against each one's filter rule.
  service_bus_subscriptions = {
    events_log = {
      topic         = "events"
      name          = local.service_bus_names.events_log_subscription
      lock_duration = local.lock_duration
      event_types   = var.events_log_types
    }
    # Events of tenants with webhooks (the outbox marks them `webhooks = '1'`): the
    # fan-out stores each (for replay) and matches the tenant's subscriptions in code.
    webhooks = {
      topic         = "events"
      name          = local.service_bus_names.webhooks_subscription
      lock_duration = local.lock_duration
      event_types   = ["*"]
      sql_filter    = "[webhooks] = '1'"
    }
    # Message events analytics counts (the outbox marks them `analytics = '1'`): the
    # rollups count each once (markers), a batch at a time.
    analytics = {
      topic         = "events"
      name          = local.service_bus_names.analytics_subscription
      lock_duration = local.lock_duration
      event_types   = ["*"]
      sql_filter    = "[analytics] = '1'"
    }
  }

  # Every app setting that shared/config.py's Settings reads in Azure (all of its
  # fields but the LOCAL_ONLY ones); tests/infra checks both sides.
  # APPLICATIONINSIGHTS_CONNECTION_STRING comes from site_config instead.
  app_settings = {
    OCM_ENV       = "production"
    OCM_BACKEND   = "azure"
    OCM_LOG_LEVEL = var.log_level

    OCM_OUTBOUND_QUEUE          = local.service_bus_names.outbound_queue
    OCM_PROVIDER_EVENTS_QUEUE   = local.service_bus_names.provider_events_queue
    OCM_EVENTS_TOPIC            = local.service_bus_names.events_topic
    OCM_EVENTS_LOG_SUBSCRIPTION = local.service_bus_names.events_log_subscription
    OCM_EVENTS_LOG_TYPES        = join(",", var.events_log_types)
    OCM_WEBHOOKS_SUBSCRIPTION   = local.service_bus_names.webhooks_subscription
    OCM_ANALYTICS_SUBSCRIPTION  = local.service_bus_names.analytics_subscription
    OCM_ANALYTICS_ENABLED       = true
    OCM_COST_PER_MILLION_USD    = 17.55
    OCM_WEBHOOK_QUEUE           = local.service_bus_names.webhook_queue

    OCM_WEBHOOK_TIMEOUT_SECONDS       = 15
    OCM_WEBHOOK_WARN_AFTER_SECONDS    = 86400
    OCM_WEBHOOK_DISABLE_AFTER_SECONDS = 432000
    OCM_WEBHOOK_SECRET_GRACE_SECONDS  = 86400
    OCM_EVENT_RETENTION_DAYS          = 30

    OCM_OUTBOX_SWEEP_SCHEDULE        = "*/30 * * * * *"
    OCM_HOUSEKEEPING_SCHEDULE        = "0 */10 * * * *"
    OCM_ANALYTICS_RECONCILE_SCHEDULE = "0 15 * * * *"

    OCM_MAX_ATTEMPTS             = 5
    OCM_RETRY_BASE_SECONDS       = 2
    OCM_RETRY_MAX_SECONDS        = 900
    OCM_MAX_THROTTLES            = 100
    OCM_PAUSED_RECHECK_SECONDS   = 60
    OCM_QUEUE_MAX_DELIVERY_COUNT = local.max_delivery_count
    OCM_QUEUE_LOCK_SECONDS       = local.lock_seconds
    OCM_CLAIM_TIMEOUT_SECONDS    = 300
    # Past a Flex cold start and a backlog's queueing, under Service Bus's
    # 10-minute duplicate-detection window: the sweep re-publishes only what
    # intake's own publication most likely lost.
    OCM_OUTBOX_GRACE_SECONDS    = 300
    OCM_LOOKUP_CACHE_SECONDS    = 5
    OCM_IDEMPOTENCY_TTL_SECONDS = 86400
    OCM_AUDIT_RETENTION_DAYS    = 400
    OCM_TRUST_FORWARDED_FOR     = true # the Functions front end appends the client
    # Provider signatures cover the callback URL the provider called: the app's
    # public origin, not what the worker sees behind the front end. "" (unset):
    # the app takes https://$WEBSITE_HOSTNAME, the name the platform gave it.
    OCM_PUBLIC_BASE_URL              = var.public_base_url
    OCM_RATE_LIMIT_PER_SECOND        = 100
    OCM_RATE_LIMIT_BURST             = 200
    OCM_TENANT_RATE_LIMIT_PER_SECOND = 300
    OCM_TENANT_RATE_LIMIT_BURST      = 600
    OCM_MESSAGE_RATE_PER_SECOND      = 1000
    OCM_MESSAGE_RATE_BURST           = 5000
    OCM_QUOTA_MESSAGES_PER_DAY       = 0
    OCM_QUOTA_MESSAGES_PER_MONTH     = 0
    OCM_ALLOW_PRIVATE_EGRESS         = false

    OCM_COSMOS_ENDPOINT      = module.cosmos.endpoint
    OCM_COSMOS_DATABASE      = var.cosmos_database_name
    OCM_KEY_VAULT_URL        = module.keyvault.vault_uri
    OCM_SECRET_CACHE_SECONDS = 60

    ServiceBusConnection__fullyQualifiedNamespace = module.servicebus.fully_qualified_namespace

    # With host.json's "telemetryMode": "OpenTelemetry": the Python worker's own
    # pipeline (shared/telemetry.py) carries its logs and the host stops copying
    # them, so each line reaches Application Insights once (azure review C6).
    PYTHON_ENABLE_OPENTELEMETRY = "true"
  }
}

resource "azurerm_resource_group" "this" {
  name     = coalesce(var.resource_group_name, "rg-${local.base_name}")
  location = var.location
  tags     = var.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  name                = local.base_name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

module "storage" {
  source = "./modules/storage"

  name                      = "st${var.name_prefix}${random_string.suffix.result}"
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  replication_type          = var.storage_replication_type
  deployment_container_name = "app-package"
  tags                      = var.tags
}

module "servicebus" {
  source = "./modules/servicebus"

  name                = "sb-${local.base_name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags

  # scale.tf: Standard with the serverless tier, Premium (one messaging partition)
  # with the provisioned one. The tier conditions of the module calls test
  # var.scale_tier itself, not local.serverless: checkov resolves variables (and
  # a --var-file) but not locals made of them, and tests/infra scans both tiers.
  sku             = var.scale_tier == "serverless" ? "Standard" : "Premium"
  messaging_units = var.scale_tier == "serverless" ? 0 : var.servicebus_messaging_units

  max_delivery_count                      = local.max_delivery_count
  duplicate_detection_history_time_window = "PT10M"

  queues = {
    outbound        = { name = local.service_bus_names.outbound_queue, lock_duration = local.lock_duration }
    provider_events = { name = local.service_bus_names.provider_events_queue, lock_duration = local.lock_duration }
    webhooks        = { name = local.service_bus_names.webhook_queue, lock_duration = local.lock_duration }
  }
  topics = {
    events = { name = local.service_bus_names.events_topic }
  }
  subscriptions = local.service_bus_subscriptions
}

module "cosmos" {
  source = "./modules/cosmos"

  name                = "cosmos-${local.base_name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  database_name       = var.cosmos_database_name
  containers          = local.cosmos_containers
  tags                = var.tags

  # scale.tf: serverless, or autoscale throughput for the hot containers and a
  # shared autoscale budget for the others.
  serverless                        = var.scale_tier == "serverless"
  hot_containers                    = var.scale_tier == "serverless" ? [] : var.cosmos_hot_containers
  hot_autoscale_max_throughput      = var.cosmos_autoscale_max_throughput
  database_autoscale_max_throughput = var.cosmos_database_autoscale_max_throughput
}

module "keyvault" {
  source = "./modules/keyvault"

  name                       = "kv-${local.base_name}"
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  soft_delete_retention_days = var.key_vault_soft_delete_retention_days
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = var.tags
}

module "function_app" {
  source = "./modules/function_app"

  name                = "func-${local.base_name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags

  storage_account_name          = module.storage.account_name
  deployment_container_endpoint = module.storage.deployment_container_endpoint
  maximum_instance_count        = local.function_instance_count # scale.tf
  instance_memory_in_mb         = var.function_instance_memory_in_mb
  http_concurrency              = var.function_http_concurrency
  zone_redundant                = var.function_zone_redundant

  application_insights_connection_string = module.monitoring.application_insights_connection_string
  app_settings                           = merge(local.app_settings, local.host_settings)
}
