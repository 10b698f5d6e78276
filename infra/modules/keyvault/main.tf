# Channel credentials and webhook signing secrets, written by the API (write-only
# for clients) and read by dispatch. Azure RBAC decides who may read or write,
# not access policies.
resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:The Flex app reaches the vault over the public endpoint (no VNet integration, and an app is not a trusted service for the firewall bypass); every request needs an Entra ID token and an RBAC role.
  #checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109.
  #checkov:skip=CKV2_AZURE_32:No private endpoint without a VNet; see CKV_AZURE_109.
  name                       = var.name
  location                   = var.location
  resource_group_name        = var.resource_group_name
  tenant_id                  = var.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = var.soft_delete_retention_days

  public_network_access_enabled = true
  network_acls {
    default_action = "Allow"
    bypass         = "AzureServices"
  }

  tags = var.tags
}

# Every secret read and write, by whom: the AzureDiagnostics table (Category ==
# "AuditEvent") of the workspace behind Application Insights.
resource "azurerm_monitor_diagnostic_setting" "audit" {
  name                       = "audit-to-log-analytics"
  target_resource_id         = azurerm_key_vault.this.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "audit"
  }
}
