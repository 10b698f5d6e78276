"""The Cosmos DB client's options for an endpoint: an account in Azure, a local test
server over plain http, or the Cosmos DB emulator on this machine."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

THIS_MACHINE = frozenset({"localhost", "127.0.0.1"})
"""Where the emulator listens (``https://localhost:8081/``), with a self-signed
certificate; nothing else ever goes without TLS verification."""


def client_options(endpoint: str) -> dict[str, Any]:
    """Session consistency, as the account's default, so the client keeps session
    tokens once it is open. A local endpoint (plain http, or this machine) has no
    regional endpoints, and the emulator's account names addresses of its own (inside
    its container), so endpoint discovery is off for it; https on this machine is the
    emulator, whose certificate is self-signed, so TLS verification is off there alone."""
    url = urlsplit(endpoint.strip())
    scheme = url.scheme.lower()
    here = url.hostname in THIS_MACHINE  # urlsplit lowercases the host name
    options: dict[str, Any] = {"consistency_level": "Session"}
    if scheme == "http" or here:
        options["enable_endpoint_discovery"] = False
    if scheme == "https" and here:
        options["connection_verify"] = False
    return options
