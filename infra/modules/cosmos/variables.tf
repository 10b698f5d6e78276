variable "name" {
  description = "Account name (globally unique, 3-44 lowercase letters, digits and hyphens)."
  type        = string
}

variable "location" {
  description = "Azure region (the single write region)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group."
  type        = string
}

variable "database_name" {
  description = "SQL database name."
  type        = string
}

variable "throughput_mode" {
  description = "\"serverless\" or \"autoscale\"."
  type        = string
}

variable "autoscale_max_throughput" {
  description = "Maximum RU/s of the database in autoscale mode."
  type        = number
}

variable "containers" {
  description = "Containers by name, in the shape of shared/adapters/azure/cosmos_layout.py (paths and orders as Cosmos DB writes them)."
  type = map(object({
    partition_key_paths   = list(string)
    partition_key_kind    = string
    partition_key_version = optional(number)
    unique_key_paths      = list(string)
    indexing_mode         = string
    included_paths        = list(string)
    excluded_paths        = list(string)
    composite_indexes = list(list(object({
      path  = string
      order = string
    })))
    default_ttl = number
  }))
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}
