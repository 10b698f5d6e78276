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

from shared.domain.errors import ProviderError, ProviderErrorKind
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


def answer_error(
    response: httpx.Response, kind: ProviderErrorKind, code: str, reason: str
) -> ProviderError:
    """A ProviderError for an HTTP answer already classified: its status kept, and its
    Retry-After unless the failure is permanent."""
    return ProviderError(
        kind,
        code,
        reason,
        retry_after=None if kind == "permanent" else retry_after(response),
        provider_status=str(response.status_code),
    )


def status_error(
    response: httpx.Response, prefix: str, reason: str, *, code: str | None = None
) -> ProviderError:
    """The generic classification of an unsuccessful HTTP answer."""
    status = response.status_code
    if status == 429:
        return answer_error(response, "throttled", code or f"{prefix}_THROTTLED", reason)
    kind: ProviderErrorKind = "transient" if status >= 500 or status == 408 else "permanent"
    return answer_error(response, kind, code or f"{prefix}_HTTP_{status}", reason)


def json_object(response: httpx.Response) -> dict[str, typing.Any]:
    """The answer's JSON object, or an empty one if it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


__all__ = [
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "LazyClient",
    "answer_error",
    "call",
    "guarded_client",
    "json_object",
    "retry_after",
    "status_error",
]
