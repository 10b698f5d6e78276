"""Channels: a tenant's sending set-up — channels, terminals (sender identities),
templates."""
