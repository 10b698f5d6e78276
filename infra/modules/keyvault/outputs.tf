output "id" {
  description = "Resource id of the vault (scope of the app's Key Vault role)."
  value       = azurerm_key_vault.this.id
}

output "vault_uri" {
  description = "Vault URI, https://<name>.vault.azure.net/."
  value       = azurerm_key_vault.this.vault_uri
}
