terraform {
  required_version = ">= 1.6"

  required_providers {
    # 4.46 is the first 4.x release with every argument used here
    # (Key Vault `rbac_authorization_enabled` came in 4.42, the Flex Consumption
    # `http_concurrency` in 4.46); 5.x will rename things again.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.46"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  # null: the provider reads ARM_SUBSCRIPTION_ID (or the Azure CLI's default).
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
    storage {
      # Everything here is managed through ARM (the container by storage_account_id),
      # so the deploying identity needs no storage data role.
      data_plane_available = false
    }
  }
}
