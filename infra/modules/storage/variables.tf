variable "name" {
  description = "Storage account name (3-24 lowercase letters and digits)."
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

variable "replication_type" {
  description = "Account replication: LRS, ZRS, GRS, ..."
  type        = string
}

variable "deployment_container_name" {
  description = "Blob container holding the Flex Consumption deployment package."
  type        = string
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}
