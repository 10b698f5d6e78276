"""Identity: who is calling and what they may do.

Tenants, applications and their API keys, users and their sessions, access tokens
and the JWKS, authentication (a credential → a ``Principal``), the Directory (the one
narrow door to cross-tenant lookups), the audit log, rate limits and quotas.
"""
