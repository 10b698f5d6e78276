"""HTTP for provider modules: the egress-guarded client (``shared.http_client``),
and the mapping of failures onto ProviderErrors.

Errors map onto ``ProviderError`` the same way for every provider:

- egress guard refused the destination ...... permanent EGRESS_REFUSED
- name does not resolve, connection failed .. transient <P>_CONNECTION_FAILED
- timeout ................................... transient <P>_TIMEOUT
- 429 ....................................... throttled <P>_THROTTLED, Retry-After kept
- 408, 5xx .................................. transient <P>_HTTP_<status>
- other 4xx ................................. permanent <P>_HTTP_<status>

Each provider refines the last three with the error codes its API documents.
"""

from __future__ import annotations

import typing

import httpx

from shared.domain.errors import ProviderError
from shared.egress import EgressRefused
from shared.http_client import (
    MAX_RETRY_AFTER,
    USER_AGENT,
    LazyClient,
    guarded_client,
    retry_after,
)


async def call(
    client: httpx.AsyncClient, prefix: str, method: str, url: str, **kwargs: typing.Any
) -> httpx.Response:
    """One request; network failures become ProviderErrors named with ``prefix``."""
    try:
        return await client.request(method, url, **kwargs)
    except EgressRefused as exc:
        raise ProviderError("permanent", "EGRESS_REFUSED", str(exc)) from None
    except (httpx.InvalidURL, UnicodeError):
        raise ProviderError(
            "permanent", f"{prefix}_INVALID_URL", "The provider URL is not valid"
        ) from None
    except httpx.TimeoutException:
        raise ProviderError("transient", f"{prefix}_TIMEOUT", "The provider timed out") from None
    except httpx.HTTPError as exc:
        raise ProviderError(
            "transient",
            f"{prefix}_CONNECTION_FAILED",
            f"Could not reach the provider: {type(exc).__name__}",
        ) from None


def status_error(
    response: httpx.Response, prefix: str, reason: str, *, code: str | None = None
) -> ProviderError:
    """The generic classification of an unsuccessful HTTP answer."""
    status = response.status_code
    if status == 429:
        return ProviderError(
            "throttled",
            code or f"{prefix}_THROTTLED",
            reason,
            retry_after=retry_after(response),
            provider_status="429",
        )
    kind: typing.Literal["transient", "permanent"] = (
        "transient" if status >= 500 or status == 408 else "permanent"
    )
    return ProviderError(
        kind,
        code or f"{prefix}_HTTP_{status}",
        reason,
        retry_after=retry_after(response) if kind == "transient" else None,
        provider_status=str(status),
    )


__all__ = [
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "LazyClient",
    "call",
    "guarded_client",
    "retry_after",
    "status_error",
]
