output "name" {
  description = "Name of the Function App."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "default_hostname" {
  description = "Default host name, <name>.azurewebsites.net."
  value       = azurerm_function_app_flex_consumption.this.default_hostname
}

output "principal_id" {
  description = "Object id of the app's system-assigned identity."
  value       = azurerm_function_app_flex_consumption.this.identity[0].principal_id
}
