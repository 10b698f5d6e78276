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

variable "serverless" {
  description = "A serverless account (no throughput anywhere); false: provisioned throughput."
  type        = bool
}

variable "hot_containers" {
  description = "Containers with autoscale throughput of their own (provisioned only)."
  type        = list(string)

  validation {
    condition     = alltrue([for name in var.hot_containers : contains(keys(var.containers), name)])
    error_message = "hot_containers must name containers of var.containers."
  }
}

variable "hot_autoscale_max_throughput" {
  description = "Autoscale maximum RU/s of each hot container, by name."
  type        = map(number)
}

variable "database_autoscale_max_throughput" {
  description = "Autoscale maximum RU/s the other containers share (provisioned only)."
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
