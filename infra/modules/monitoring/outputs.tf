output "application_insights_connection_string" {
  description = "Connection string of the Application Insights component (an identifier, not a credential, but kept out of logs)."
  value       = azurerm_application_insights.this.connection_string
  sensitive   = true
}

output "application_insights_name" {
  description = "Name of the Application Insights component."
  value       = azurerm_application_insights.this.name
}

output "log_analytics_workspace_name" {
  description = "Name of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.name
}

output "log_analytics_workspace_id" {
  description = "Resource id of the Log Analytics workspace (destination of diagnostic settings)."
  value       = azurerm_log_analytics_workspace.this.id
}
