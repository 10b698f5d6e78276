output "namespace_id" {
  description = "Resource id of the namespace (scope of the app's Service Bus roles)."
  value       = azurerm_servicebus_namespace.this.id
}

output "fully_qualified_namespace" {
  description = "Host name of the namespace, <name>.servicebus.windows.net (public cloud)."
  value       = "${azurerm_servicebus_namespace.this.name}.servicebus.windows.net"
}
