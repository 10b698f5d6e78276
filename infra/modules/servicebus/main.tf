# Standard (scale_tier = "serverless") or Premium with one messaging partition
# and var.messaging_units units ("provisioned"): topics and duplicate detection
# on both, and no keys (local auth off): senders and receivers authenticate with
# Entra ID and a data role. azurerm replaces the namespace when the SKU changes
# to or from Premium (README "Scale tiers").
resource "azurerm_servicebus_namespace" "this" {
  #checkov:skip=CKV_AZURE_199:Double (infrastructure) encryption comes only with a customer-managed key, which neither tier uses (CKV_AZURE_201); Microsoft-managed keys encrypt at rest.
  #checkov:skip=CKV_AZURE_201:A customer-managed key is a Premium option (scale_tier = "provisioned") left off on both tiers: messages live minutes, and the key would add a Key Vault key and a user-assigned identity to rotate and guard.
  #checkov:skip=CKV_AZURE_202:A namespace identity only serves to reach a customer-managed key, which neither tier uses (CKV_AZURE_201); the app's own identity is what authenticates.
  #checkov:skip=CKV_AZURE_204:Private endpoints need Premium and a VNet-integrated Function App, which this configuration does not have on either tier (README "Choices and limits"); the public endpoint accepts Entra ID tokens only (local auth is off).
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = var.sku
  # Messaging units (Premium: 1, 2, 4, 8 or 16; Standard: 0). One partition: a
  # partitioned Premium namespace would require every entity to be partitioned.
  capacity                      = var.sku == "Premium" ? var.messaging_units : 0
  premium_messaging_partitions  = var.sku == "Premium" ? 1 : 0
  local_auth_enabled            = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
  tags                          = var.tags
}

# The entities are valid on both tiers (azurerm 4.81 checks some arguments
# against the namespace's SKU): partitioning_enabled stays false (a Premium
# namespace with one messaging partition refuses partitioned entities; one with
# more would require them); express_enabled stays unset (Premium refuses express
# entities); max_message_size_in_kilobytes stays unset (only Premium accepts a
# value other than 256; the app keeps every message far below 256 KB);
# max_size_in_megabytes stays unset, the SKU's default (Standard allows 1-5 GB,
# Premium up to 80 GB).
#
# Duplicate detection drops a message whose id was seen within the window: the
# outbox sweep may publish a job or an event twice, and each carries a
# deterministic id. Dead-lettering on expiry: nothing sets a default TTL (the
# app expires messages itself), but a sender-set TTL must not lose a message.
resource "azurerm_servicebus_queue" "this" {
  for_each = var.queues

  name                                    = each.value.name
  namespace_id                            = azurerm_servicebus_namespace.this.id
  lock_duration                           = each.value.lock_duration
  max_delivery_count                      = var.max_delivery_count
  requires_duplicate_detection            = true
  duplicate_detection_history_time_window = var.duplicate_detection_history_time_window
  dead_lettering_on_message_expiration    = true
  batched_operations_enabled              = true
  partitioning_enabled                    = false
}

resource "azurerm_servicebus_topic" "this" {
  for_each = var.topics

  name                                    = each.value.name
  namespace_id                            = azurerm_servicebus_namespace.this.id
  requires_duplicate_detection            = true
  duplicate_detection_history_time_window = var.duplicate_detection_history_time_window
  batched_operations_enabled              = true
  partitioning_enabled                    = false
}

resource "azurerm_servicebus_subscription" "this" {
  for_each = var.subscriptions

  name                                      = each.value.name
  topic_id                                  = azurerm_servicebus_topic.this[each.value.topic].id
  lock_duration                             = each.value.lock_duration
  max_delivery_count                        = var.max_delivery_count
  dead_lettering_on_message_expiration      = true
  dead_lettering_on_filter_evaluation_error = true
  batched_operations_enabled                = true
}

# The subscription receives only the listed event types. The outbox publishes
# each event with the application (user) property `type`. In Service Bus SQL
# filter syntax a bare name is a user-scope property (`user.` is the default
# scope; `sys.` would mean a broker property), but a regular identifier may not
# be a reserved keyword and the reserved list is unpublished, so the name is
# written as a delimited identifier, `[type]`, which is valid whatever it is.
# Creating a rule through ARM removes the subscription's `$Default` (1=1) rule;
# the provider feature `servicebus.auto_delete_subscription_default_rule`
# (../../providers.tf) deletes it as the subscription is created, so no event
# passes unfiltered in the seconds between.
resource "azurerm_servicebus_subscription_rule" "event_types" {
  for_each = var.subscriptions

  name            = "event-types"
  subscription_id = azurerm_servicebus_subscription.this[each.key].id
  filter_type     = "SqlFilter"
  sql_filter = coalesce(
    each.value.sql_filter,
    contains(each.value.event_types, "*") ? "1=1" : "[type] IN (${join(", ", formatlist("'%s'", each.value.event_types))})",
  )
}
