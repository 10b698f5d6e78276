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
