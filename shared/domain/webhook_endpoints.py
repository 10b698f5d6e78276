"""What a webhook subscription may send its deliveries to: the endpoint's URL, judged
on its form, and the custom headers sent with every delivery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import idna

from shared.domain.errors import FieldError

RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
        "proxy-connection",
    }
)
"""Headers a subscription may not set: the signature's own (``webhook-*``) and those
that frame the request, which OCM sets. ``Authorization`` is allowed: endpoints use it."""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
_VALUE = re.compile(r"^[\x20-\x7e\t]{0,4096}$")


def header_errors(headers: Mapping[str, str]) -> list[FieldError]:
    """What is wrong with a subscription's custom headers (nothing: an empty list).

    Names are HTTP tokens, unique ignoring case; values are printable ASCII on one
    line, so a value can never smuggle in a header of its own."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for name, value in headers.items():
        field, lower = f"headers.{name}", name.lower()
        if not _TOKEN.match(name):
            errors.append(FieldError(field, "is not a header name"))
        elif lower in RESERVED_HEADERS or lower.startswith("webhook-"):
            errors.append(FieldError(field, "is set by OCM"))
        elif lower in seen:
            errors.append(FieldError(field, "is given twice (names ignore case)"))
        elif not _VALUE.match(value):
            errors.append(FieldError(field, "must be printable ASCII on one line, ≤ 4096"))
        seen.add(lower)
    return errors


def url_error(url: str) -> str | None:
    """Why ``url`` cannot be a webhook endpoint's address, judged on its form alone
    (None: it can); where it points is the egress guard's to judge."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http or https URL with a host"
    if ":" not in parts.hostname:  # an IPv6 literal is not a name
        try:
            idna.encode(parts.hostname, uts46=True)  # what httpx will do with it
        except idna.IDNAError:  # empty or over-long labels, malformed punycode
            return "has a host name no DNS can hold"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (send them in a custom header)"
    if port == 0:
        return "has no valid port"
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        return "must not contain spaces or control characters"
    return None
