# NoSQL API, one region, session consistency; keys disabled: the app reaches
# the data plane with its identity and a Cosmos DB data role (../../roles.tf).
resource "azurerm_cosmosdb_account" "this" {
  #checkov:skip=CKV_AZURE_99:The Flex app reaches Cosmos DB over the public endpoint (no VNet integration here); requests need an Entra ID token with a data role, keys are disabled.
  #checkov:skip=CKV_AZURE_101:Same reason as CKV_AZURE_99.
  #checkov:skip=CKV_AZURE_140:Local authentication is off: local_authentication_enabled = false below; checkov reads only the deprecated local_authentication_disabled, which azurerm 5.0 removes.
  #checkov:skip=CKV_AZURE_100:Microsoft-managed keys encrypt at rest; a customer-managed key would add a Key Vault key to rotate for no gain here.
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  offer_type          = "Standard"
  kind                = "GlobalDocumentDB"

  local_authentication_enabled = false
  # Keys cannot change containers or throughput either; Terraform uses ARM.
  access_key_metadata_writes_enabled = false
  minimal_tls_version                = "Tls12"
  public_network_access_enabled      = true

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = var.location
    failover_priority = 0
  }

  # Serverless or provisioned is fixed at creation for Terraform: azurerm replaces
  # the account when EnableServerless is added or removed (README "Scale tiers").
  dynamic "capabilities" {
    for_each = var.serverless ? ["EnableServerless"] : []
    content {
      name = capabilities.value
    }
  }

  tags = var.tags
}

# Provisioned: the database's autoscale RU/s are shared by the containers without
# throughput of their own, so one small budget covers the small ones (tenants,
# apps, channels...). Serverless: no throughput anywhere (the account refuses it).
# Like a container's, a database's throughput can only be given at creation.
resource "azurerm_cosmosdb_sql_database" "this" {
  name                = var.database_name
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.this.name

  dynamic "autoscale_settings" {
    for_each = var.serverless ? [] : [var.database_autoscale_max_throughput]
    content {
      max_throughput = autoscale_settings.value
    }
  }
}

resource "azurerm_cosmosdb_sql_container" "this" {
  for_each = var.containers

  name                  = each.key
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.this.name
  database_name         = azurerm_cosmosdb_sql_database.this.name
  partition_key_paths   = each.value.partition_key_paths
  partition_key_kind    = each.value.partition_key_kind
  partition_key_version = each.value.partition_key_version
  default_ttl           = each.value.default_ttl

  # A hot container has autoscale throughput of its own, beside the database's
  # shared budget. Cosmos DB allows that only when the container is created with
  # it: adding or removing one here later needs the container re-created.
  dynamic "autoscale_settings" {
    for_each = !var.serverless && contains(var.hot_containers, each.key) ? [var.hot_autoscale_max_throughput[each.key]] : []
    content {
      max_throughput = autoscale_settings.value
    }
  }

  # One unique key per path, as the code declares them: each field is unique on
  # its own within a logical partition, not as a compound.
  dynamic "unique_key" {
    for_each = each.value.unique_key_paths
    content {
      paths = [unique_key.value]
    }
  }

  indexing_policy {
    indexing_mode = each.value.indexing_mode

    dynamic "included_path" {
      for_each = each.value.included_paths
      content {
        path = included_path.value
      }
    }

    dynamic "excluded_path" {
      for_each = each.value.excluded_paths
      content {
        path = excluded_path.value
      }
    }

    dynamic "composite_index" {
      for_each = each.value.composite_indexes
      content {
        dynamic "index" {
          for_each = composite_index.value
          content {
            path  = index.value.path
            order = index.value.order
          }
        }
      }
    }
  }
}
