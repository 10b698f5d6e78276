terraform {
  required_version = ">= 1.9" # variable validations that read locals and other variables

  required_providers {
    # 4.81 is the release these files are checked against (schemas read at
    # that tag) and the first with the Service Bus feature below; it also reads
    # the subscription from the Azure CLI, which the provider does from 4.60 on
    # (4.46 to 4.59 ask for ARM_SUBSCRIPTION_ID). .terraform.lock.hcl pins 4.81.0;
    # 5.x renames things again.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.81"
    }
    # One update the azurerm provider cannot make yet: the Function App's app
    # settings without AzureWebJobsStorage (modules/function_app).
    azapi = {
      source  = "azure/azapi"
      version = "~> 2.4"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  # null: the provider reads ARM_SUBSCRIPTION_ID, else the Azure CLI's default
  # subscription (`az account set`), which azurerm reads from 4.60 on.
  subscription_id = var.subscription_id

  # The storage account refuses shared keys: should the provider call a storage
  # data plane at all, it must use Entra ID.
  storage_use_azuread = true

  features {
    key_vault {
      # Purge protection is on: a destroyed vault is kept soft-deleted, and
      # re-creating one with the same name recovers it instead of failing.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
    servicebus {
      # A new subscription's $Default rule (which passes every event) is deleted
      # as the subscription is created, not when its own rule arrives seconds later.
      auto_delete_subscription_default_rule = true
    }
    storage {
      # Everything here is managed through ARM (the container by storage_account_id),
      # so the deploying identity needs no storage data role.
      data_plane_available = false
    }
  }
}
