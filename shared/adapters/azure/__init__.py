"""Azure adapters: Cosmos DB documents, Service Bus queues, Key Vault secrets.

Imported only when ``OCM_BACKEND=azure`` (by shared.bootstrap), never at import
time of the platform, so the embedded backend needs none of the Azure SDKs.
"""
