variable "subscription_id" {
  description = "Azure subscription to deploy into; null reads ARM_SUBSCRIPTION_ID or the Azure CLI's default subscription."
  type        = string
  default     = null
}

variable "location" {
  description = "Azure region; it must offer the Flex Consumption plan (`az functionapp list-flexconsumption-locations`)."
  type        = string
  default     = "swedencentral"
}

variable "name_prefix" {
  description = "Short prefix of every resource name; a random suffix keeps the globally unique names unique."
  type        = string
  default     = "ocm"

  validation {
    # Storage account names allow 3-24 lowercase letters and digits only.
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.name_prefix))
    error_message = "name_prefix must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "resource_group_name" {
  description = "Name of the resource group to create; null derives one from name_prefix."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default = {
    application = "ocm"
  }
}

variable "log_level" {
  description = "OCM_LOG_LEVEL of the Function App."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (and so of Application Insights data)."
  type        = number
  default     = 30
}

variable "events_log_types" {
  description = "Event types the events topic's log subscription receives; [\"*\"] for all. Becomes the subscription's SQL filter and OCM_EVENTS_LOG_TYPES."
  type        = list(string)
  default     = ["message.failed", "message.expired", "analytics.drift"]

  validation {
    condition     = length(var.events_log_types) > 0 && alltrue([for t in var.events_log_types : can(regex("^(\\*|[a-z]+(\\.[a-z_]+)+)$", t))])
    error_message = "events_log_types must list event types like \"message.failed\", or be [\"*\"]."
  }
}

variable "cosmos_database_name" {
  description = "Name of the Cosmos DB SQL database (OCM_COSMOS_DATABASE)."
  type        = string
  default     = "ocm"
}

variable "scale_tier" {
  description = "What Cosmos DB and Service Bus provide, and so how hard the functions may push them (README \"Scale tiers\"): \"serverless\" (Cosmos DB serverless, Service Bus Standard; the default) or \"provisioned\" (Cosmos DB autoscale throughput, Service Bus Premium)."
  type        = string
  default     = "serverless"

  validation {
    condition     = contains(["serverless", "provisioned"], var.scale_tier)
    error_message = "scale_tier must be \"serverless\" or \"provisioned\"."
  }
}

variable "cosmos_hot_containers" {
  description = "Containers with autoscale throughput of their own when scale_tier = \"provisioned\" (the others share the database's). Fixed when a container is created: Cosmos DB gives a container in a shared-throughput database dedicated throughput only at creation."
  type        = list(string)
  default     = ["messages", "counters", "rollups"]

  validation {
    condition     = alltrue([for name in var.cosmos_hot_containers : contains(keys(local.cosmos_containers), name)])
    error_message = "cosmos_hot_containers must name containers of containers.tf."
  }

  validation {
    condition     = length(distinct(var.cosmos_hot_containers)) == length(var.cosmos_hot_containers)
    error_message = "cosmos_hot_containers must not name a container twice."
  }
}

variable "cosmos_autoscale_max_throughput" {
  description = "Autoscale maximum RU/s of each hot container when scale_tier = \"provisioned\" (it scales between 10% of this and this), by container: one entry per name of cosmos_hot_containers."
  type        = map(number)
  default = {
    messages = 8000
    counters = 1000
    rollups  = 6000
  }

  validation {
    condition     = alltrue([for rus in values(var.cosmos_autoscale_max_throughput) : rus >= 1000 && rus % 1000 == 0])
    error_message = "cosmos_autoscale_max_throughput values must be multiples of 1000, at least 1000."
  }

  validation {
    condition = alltrue(concat(
      [for name in var.cosmos_hot_containers : contains(keys(var.cosmos_autoscale_max_throughput), name)],
      [for name in keys(var.cosmos_autoscale_max_throughput) : contains(var.cosmos_hot_containers, name)],
    ))
    error_message = "cosmos_autoscale_max_throughput must have one entry per container of cosmos_hot_containers, and no other."
  }
}

variable "cosmos_database_autoscale_max_throughput" {
  description = "Autoscale maximum RU/s the database's other containers share when scale_tier = \"provisioned\" (it scales between 10% of this and this)."
  type        = number
  default     = 1000

  validation {
    condition     = var.cosmos_database_autoscale_max_throughput >= 1000 && var.cosmos_database_autoscale_max_throughput % 1000 == 0
    error_message = "cosmos_database_autoscale_max_throughput must be a multiple of 1000, at least 1000."
  }
}

variable "servicebus_messaging_units" {
  description = "Messaging units of the Premium namespace when scale_tier = \"provisioned\" (one messaging partition)."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 4, 8, 16], var.servicebus_messaging_units)
    error_message = "servicebus_messaging_units must be 1, 2, 4, 8 or 16."
  }
}

variable "function_maximum_instance_count" {
  description = "Instances the Flex Consumption app may scale out to; null (the default) derives it from scale_tier (README \"Scale tiers\"). maxConcurrentCalls is then derived from it."
  type        = number
  default     = null

  validation {
    condition     = var.function_maximum_instance_count == null ? true : var.function_maximum_instance_count >= 1 && var.function_maximum_instance_count <= 1000 && floor(var.function_maximum_instance_count) == var.function_maximum_instance_count
    error_message = "function_maximum_instance_count must be null or a whole number from 1 to 1000."
  }
}

variable "function_instance_memory_in_mb" {
  description = "Memory of each Flex Consumption instance: 2048 or 4096."
  type        = number
  default     = 2048

  validation {
    condition     = contains([2048, 4096], var.function_instance_memory_in_mb)
    error_message = "function_instance_memory_in_mb must be 2048 or 4096."
  }
}

variable "function_http_concurrency" {
  description = "HTTP requests one instance serves at once before the platform adds another (Flex's own default depends on language and memory). The API is async (FastAPI): one instance serves many requests at once."
  type        = number
  default     = 16
}

variable "function_zone_redundant" {
  description = "Make the Flex Consumption plan zone-redundant; only some regions offer it (keep storage_replication_type = \"ZRS\" with it)."
  type        = bool
  default     = false
}

variable "storage_replication_type" {
  description = "Replication of the host storage account (leases, timers' schedule state, deployment packages)."
  type        = string
  default     = "ZRS"
}

variable "key_vault_soft_delete_retention_days" {
  description = "Days a deleted secret (or the vault) stays recoverable; 7-90, fixed once the vault exists."
  type        = number
  default     = 90
}

variable "public_base_url" {
  description = "The public origin providers call back (a custom domain); empty: the host name Azure gives the app (WEBSITE_HOSTNAME), read at run time."
  type        = string
  default     = ""
}
