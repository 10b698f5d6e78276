output "account_id" {
  description = "Resource id of the storage account (scope of the app's storage roles)."
  value       = azurerm_storage_account.this.id
}

output "account_name" {
  description = "Name of the storage account (AzureWebJobsStorage__accountName)."
  value       = azurerm_storage_account.this.name
}

output "deployment_container_endpoint" {
  description = "URL of the deployment package container."
  value       = "${azurerm_storage_account.this.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
}
