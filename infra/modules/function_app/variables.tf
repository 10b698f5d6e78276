variable "name" {
  description = "Function App name (globally unique; at most 32 characters avoids host id collisions)."
  type        = string
}

variable "location" {
  description = "Azure region (must offer Flex Consumption)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group."
  type        = string
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}

variable "storage_account_name" {
  description = "Host storage account, reached with the app's identity."
  type        = string
}

variable "deployment_container_endpoint" {
  description = "Blob container URL of the deployment package."
  type        = string
}

variable "maximum_instance_count" {
  description = "Instances the app may scale out to."
  type        = number
}

variable "instance_memory_in_mb" {
  description = "Memory per instance: 2048 or 4096."
  type        = number
}

variable "http_concurrency" {
  description = "HTTP requests per instance before scaling out."
  type        = number
}

variable "zone_redundant" {
  description = "Spread the plan's instances across availability zones (regions that support it only)."
  type        = bool
}

variable "application_insights_connection_string" {
  description = "Application Insights connection string (sets APPLICATIONINSIGHTS_CONNECTION_STRING)."
  type        = string
  sensitive   = true
}

variable "app_settings" {
  description = "The app's own settings (shared/config.py)."
  type        = map(string)
}
