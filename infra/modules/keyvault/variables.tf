variable "name" {
  description = "Vault name (globally unique, 3-24 characters)."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group."
  type        = string
}

variable "tenant_id" {
  description = "Entra ID tenant that authenticates requests to the vault."
  type        = string
}

variable "soft_delete_retention_days" {
  description = "Days a deleted secret or vault stays recoverable (7-90)."
  type        = number
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}

variable "log_analytics_workspace_id" {
  description = "Workspace receiving the vault's audit log (who read or wrote which secret)."
  type        = string
}
