# Host storage of the Function App: blob leases (timer singletons, host id),
# diagnostic events (tables) and the Flex Consumption deployment package. Reached
# by the app's identity only; shared keys are off.
resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_59:The Flex app reaches its host storage over the public endpoint (no VNet integration here); every request needs an Entra ID token and a data role, anonymous and shared-key access are off.
  #checkov:skip=CKV2_AZURE_33:No private endpoint without a VNet; see CKV_AZURE_59.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys are enough for host leases and deployment packages; a customer-managed key would add a Key Vault key and its rotation for no gain here.
  #checkov:skip=CKV_AZURE_33:Queue service logging: the host uses no queues of this account (no blob or queue triggers).
  #checkov:skip=CKV_AZURE_206:Zone-redundant (ZRS) by default, not geo-redundant: everything here is rebuilt by a redeploy (leases, diagnostic events, the package), so a second region buys nothing.
  name                     = var.name
  location                 = var.location
  resource_group_name      = var.resource_group_name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  # Account SAS needs a shared key, which is off; this bounds user-delegation SAS.
  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  tags = var.tags
}

resource "azurerm_storage_container" "deployment" {
  #checkov:skip=CKV2_AZURE_21:Logging every blob read would mostly record the host's lease renewals, at a cost; writes to the package come from deployments, which the activity log records.
  name                  = var.deployment_container_name
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}
