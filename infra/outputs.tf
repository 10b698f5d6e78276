output "api_base_url" {
  description = "Base URL of the HTTP API (OpenAPI at <this>/openapi.json, docs at <this>/docs)."
  value       = "https://${module.function_app.default_hostname}/api"
}

output "function_app_name" {
  description = "Name of the Function App (for `func azure functionapp publish`)."
  value       = module.function_app.name
}

output "resource_group_name" {
  description = "Resource group holding everything."
  value       = azurerm_resource_group.this.name
}

output "service_bus_namespace" {
  description = "Service Bus namespace host name (ServiceBusConnection__fullyQualifiedNamespace)."
  value       = module.servicebus.fully_qualified_namespace
}

output "cosmos_endpoint" {
  description = "Cosmos DB account endpoint (OCM_COSMOS_ENDPOINT)."
  value       = module.cosmos.endpoint
}

output "key_vault_uri" {
  description = "Key Vault URI (OCM_KEY_VAULT_URL)."
  value       = module.keyvault.vault_uri
}

output "application_insights_name" {
  description = "Application Insights component receiving the app's traces, logs and metrics."
  value       = module.monitoring.application_insights_name
}

output "log_analytics_workspace_name" {
  description = "Log Analytics workspace behind Application Insights."
  value       = module.monitoring.log_analytics_workspace_name
}

output "storage_account_name" {
  description = "Host storage account (AzureWebJobsStorage, Flex deployment packages)."
  value       = module.storage.account_name
}

output "scale" {
  description = "The scale tier's derived figures (README \"Scale tiers\"): what each store sustains in delivered messages per second, the least of them (the ceiling), and the instances and Service Bus calls per instance the functions get so as to stay under it."
  value = {
    tier                               = var.scale_tier
    store_ceilings_messages_per_second = { for part, ceiling in local.store_ceilings : part => floor(ceiling) }
    ceiling_messages_per_second        = floor(local.ceiling_messages_per_second)
    dispatch_concurrency               = local.dispatch_concurrency
    function_maximum_instance_count    = local.function_instance_count
    service_bus_max_concurrent_calls   = local.service_bus_max_concurrent_calls
    service_bus_operations_per_message = local.service_bus_operations_per_message
    service_bus_operations_per_second  = local.service_bus_operations_per_second
    cosmos_request_units_per_second = {
      messages   = local.cosmos_messages_request_units_per_second
      counters   = local.cosmos_counters_request_units_per_second
      rollups    = local.cosmos_rollups_request_units_per_second
      "(shared)" = local.cosmos_shared_request_units_per_second
    }
  }
}
