"""The routes that take no OCM credential, and what says who calls instead; the
OpenAPI and isolation tests both hold every other route to a scope."""

from __future__ import annotations

PUBLIC = {
    ("get", "/api/health"),
    ("get", "/api/v1/channel-types"),
    ("get", "/api/v1/event-types"),
    ("post", "/api/v1/oauth/token"),  # authenticates the client itself (RFC 6749)
    ("get", "/api/.well-known/jwks.json"),
    # Sign-in and single-use tokens: the token or the password says who, not a key.
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/users/accept-invite"),
    ("post", "/api/v1/users/reset-password"),
    # Provider callbacks: the provider's own signature says who (the provider tests
    # show another channel's signature is refused).
    ("get", "/api/v1/callbacks/{provider}/{channel_id}"),
    ("post", "/api/v1/callbacks/{provider}/{channel_id}"),
    # One-click unsubscribe: the signed token in the link says who.
    ("get", "/api/v1/unsubscribe/{token}"),
    ("post", "/api/v1/unsubscribe/{token}"),
}
