# What the Function App's system-assigned identity may do: data-plane roles only,
# no keys anywhere (Service Bus and Cosmos DB refuse local auth, storage refuses
# shared keys).

locals {
  app_principal_id = module.function_app.principal_id

  # Blob Data Owner: the host's leases (timer singletons), its keys and the Flex
  # deployment package. Table Data Contributor: the host's diagnostic events
  # (AZFD0003 otherwise). No queue role: no blob or queue trigger uses host storage.
  storage_roles = ["Storage Blob Data Owner", "Storage Table Data Contributor"]
  # Data Owner, not Sender + Receiver: the Functions scaler reads each queue's and
  # subscription's message count (GetQueueRuntimePropertiesAsync), which needs the
  # Manage claim; without it Flex scales on the first message's age alone and logs
  # a warning every hour. Owner also lets the app alter entities; the code never does.
  service_bus_roles = ["Azure Service Bus Data Owner"]

  # Built-in "Cosmos DB Built-in Data Contributor" (a Cosmos data-plane role,
  # not an Azure RBAC one): items read/write plus metadata reads, but no creating
  # or altering containers, which Terraform owns.
  cosmos_data_contributor = "00000000-0000-0000-0000-000000000002"
}

resource "azurerm_role_assignment" "app_storage" {
  for_each = toset(local.storage_roles)

  scope                = module.storage.account_id
  role_definition_name = each.value
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "app_service_bus" {
  for_each = toset(local.service_bus_roles)

  scope                = module.servicebus.namespace_id
  role_definition_name = each.value
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

# Secrets Officer, not User: the API writes channel credentials and signing secrets.
resource "azurerm_role_assignment" "app_key_vault" {
  scope                = module.keyvault.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = local.app_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_cosmosdb_sql_role_assignment" "app_cosmos" {
  resource_group_name = azurerm_resource_group.this.name
  account_name        = module.cosmos.account_name
  role_definition_id  = "${module.cosmos.account_id}/sqlRoleDefinitions/${local.cosmos_data_contributor}"
  principal_id        = local.app_principal_id
  scope               = "${module.cosmos.account_id}/dbs/${module.cosmos.database_name}"
}
