variable "name" {
  description = "Namespace name (globally unique)."
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

variable "sku" {
  description = "\"Standard\" or \"Premium\"."
  type        = string

  validation {
    condition     = contains(["Standard", "Premium"], var.sku)
    error_message = "sku must be \"Standard\" or \"Premium\"."
  }
}

variable "messaging_units" {
  description = "Messaging units of a Premium namespace: 1, 2, 4, 8 or 16 (ignored on Standard)."
  type        = number

  validation {
    condition     = contains([0, 1, 2, 4, 8, 16], var.messaging_units)
    error_message = "messaging_units must be 1, 2, 4, 8 or 16 (0 on Standard)."
  }
}

variable "tags" {
  description = "Tags."
  type        = map(string)
}

variable "max_delivery_count" {
  description = "Deliveries of a message before it is dead-lettered, for every queue and subscription."
  type        = number
}

variable "duplicate_detection_history_time_window" {
  description = "How long a message id is remembered by duplicate detection (ISO 8601 duration)."
  type        = string
}

variable "queues" {
  description = "Queues by role: the entity name and its peek-lock duration (ISO 8601)."
  type = map(object({
    name          = string
    lock_duration = string
  }))
}

variable "topics" {
  description = "Topics by role."
  type = map(object({
    name = string
  }))
}

variable "subscriptions" {
  description = "Subscriptions by role: the topic's role, the entity name, its lock duration, and the event types it receives ([\"*\"] for all)."
  type = map(object({
    topic         = string
    name          = string
    lock_duration = string
    event_types   = list(string)
    sql_filter    = optional(string)
  }))
}
