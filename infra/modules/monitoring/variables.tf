variable "name" {
  description = "Base name; the workspace is log-<name>, the component appi-<name>."
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

variable "retention_in_days" {
  description = "Log Analytics retention."
  type        = number
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}
