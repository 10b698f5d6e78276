"""Onboarding: how a tenant comes to be — today the operator's ``ocm tenant create``
and a parent creating a child tenant; self-service sign-up, its provisioning saga,
trial and go-live, export, deletion and erasure land here (issue 16)."""
