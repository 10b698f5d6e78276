# Flex Consumption: the platform scales instances with the load (up to
# maximum_instance_count), there is no worker count to set.
resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:A worker count does not apply to Flex Consumption; instances follow the load.
  #checkov:skip=CKV_AZURE_225:Off by default because zone-redundant Flex Consumption plans exist only in some regions; set function_zone_redundant = true where they do.
  name                   = "asp-${var.name}"
  location               = var.location
  resource_group_name    = var.resource_group_name
  os_type                = "Linux"
  sku_name               = "FC1"
  zone_balancing_enabled = var.zone_redundant
  tags                   = var.tags
}

locals {
  # Host storage through the app's identity (Storage Blob Data Owner and Table
  # Data Contributor, ../../roles.tf), never a key. Until the provider's own
  # backend-storage options are released (hashicorp/terraform-provider-azurerm
  # PR 29099; issue 29693) it writes a key-based AzureWebJobsStorage with an
  # empty key even when the package is reached by identity; the explicit empty
  # value replaces it, as in Azure-Samples/azure-functions-flex-consumption-samples.
  host_storage_settings = {
    AzureWebJobsStorage              = ""
    AzureWebJobsStorage__accountName = var.storage_account_name
    AzureWebJobsStorage__credential  = "managedidentity"
  }
}

resource "azurerm_function_app_flex_consumption" "this" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  service_plan_id     = azurerm_service_plan.this.id

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_in_mb
  http_concurrency       = var.http_concurrency

  # The deployment package (zip deploy / `func azure functionapp publish`)
  # is read from this container by the app's own identity.
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = var.deployment_container_endpoint
  storage_authentication_type = "SystemAssignedIdentity"

  https_only                    = true
  public_network_access_enabled = true
  # Publishing authenticates with Entra ID (az / func use an ARM token), not
  # with basic-auth publishing credentials.
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
    minimum_tls_version                    = "1.2"
  }

  app_settings = merge(var.app_settings, local.host_storage_settings)

  tags = var.tags
}
