output "account_id" {
  description = "Resource id of the account."
  value       = azurerm_cosmosdb_account.this.id
}

output "account_name" {
  description = "Name of the account."
  value       = azurerm_cosmosdb_account.this.name
}

output "endpoint" {
  description = "Account endpoint, https://<account>.documents.azure.com:443/."
  value       = azurerm_cosmosdb_account.this.endpoint
}

output "database_name" {
  description = "Name of the SQL database."
  value       = azurerm_cosmosdb_sql_database.this.name
}
