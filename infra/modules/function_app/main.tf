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
  # Data Contributor, ../../roles.tf), never a key, and no AzureWebJobsStorage
  # at all: the host reads the identity-based pair below only when the plain
  # setting is absent (an empty string is "a connection string", not absence:
  # Azure/azure-functions-host#11796).
  host_storage_settings = {
    AzureWebJobsStorage__accountName = var.storage_account_name
    AzureWebJobsStorage__credential  = "managedidentity"
  }

  # Every app setting the site must have, exactly: the app's, host storage, and
  # the Application Insights connection the provider copies from site_config.
  site_app_settings = merge(var.app_settings, local.host_storage_settings, {
    APPLICATIONINSIGHTS_CONNECTION_STRING = var.application_insights_connection_string
  })
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

# Until the provider's backend-storage options ship (hashicorp/terraform-provider-azurerm
# PR 29099; issues 29693 and 33211), every create or update of the Flex app writes
# a key-based AzureWebJobsStorage with an empty key next to the settings above.
# This puts the site's app settings back to exactly local.site_app_settings (the
# appsettings PUT replaces the whole set) after every create or update of the
# app: replace_triggered_by runs it again whenever the app changes.
resource "azapi_update_resource" "app_settings" {
  type      = "Microsoft.Web/sites/config@2023-12-01"
  name      = "appsettings"
  parent_id = azurerm_function_app_flex_consumption.this.id

  body = {
    properties = local.site_app_settings
  }
  # The settings hold no secret (identities everywhere), but ARM answers them
  # only to a list call: nothing to read back.
  response_export_values = []

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.this]
  }
}
