"""WhatsApp Cloud API errors: Graph error bodies and receipt errors as ProviderErrors.

Meta asks clients to act on the ``code`` of a Graph error body
(``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``),
not on the HTTP status; the status decides only when the body names no code.
Receipts (``statuses[].errors[]``) carry the same codes, so both name them alike:
``WHATSAPP_<code>``, except for the customer-service window (131047) and
authentication, which get names of their own.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.adapters.providers.http import answer_error, json_object, retry_after, status_error
from shared.domain.errors import ProviderError

PREFIX = "WHATSAPP"
OUTSIDE_WINDOW = 131047
OUTSIDE_WINDOW_CODE = "WHATSAPP_OUTSIDE_WINDOW"
OUTSIDE_WINDOW_REASON = (
    "More than 24 hours have passed since the customer last replied, so WhatsApp "
    "takes only an approved template message to them now (Meta error 131047)"
)
AUTH_CODE = "WHATSAPP_AUTH_FAILED"

THROTTLED = frozenset({4, 80007, 130429, 131048, 131056})
"""Rate limits: app calls (4), account (80007), throughput (130429), spam (131048),
and one business-customer pair (131056)."""
TRANSIENT = frozenset({1, 2, 131000, 131016, 131057, 133004})
"""Unknown, service down, something went wrong, service unavailable, account in
maintenance, server temporarily unavailable."""
AUTH = frozenset({0, 10, 190, *range(200, 300)})
"""Token expired or invalid, permission denied or not granted."""
PERMANENT = frozenset({3, 100, 368, 131026, 131031, 131051, *range(132000, 132016)})
"""Capability, invalid parameter, policy block, undeliverable, account locked,
unsupported type, template errors: the same request can never succeed."""

PAIR_RATE_SECONDS = 6.0
"""Meta allows about one message every 6 seconds to the same customer (131056)."""


def error_code(code: int | None) -> str:
    """The OCM error code for a Meta error code (sends and receipts alike)."""
    if code == OUTSIDE_WINDOW:
        return OUTSIDE_WINDOW_CODE
    if code in AUTH:
        return AUTH_CODE
    return f"{PREFIX}_{code}" if code is not None else f"{PREFIX}_FAILED"


def describe(error: dict[str, Any], *, mask: str = "") -> str:
    """A reason from a Graph error or a receipt error: title or message, then details."""
    if error.get("code") == OUTSIDE_WINDOW:
        return OUTSIDE_WINDOW_REASON
    title = str(error.get("message") or error.get("title") or "WhatsApp refused the message")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    reason = f"{title}: {details}" if details and details != title else title
    if mask:
        reason = reason.replace(mask, "***")
    return reason[:1000]


def graph_error(response: httpx.Response, *, token: str) -> ProviderError:
    """Classify an unsuccessful answer of the Graph API by its error code."""
    error = _error_body(response)
    if error is None:
        return status_error(response, PREFIX, f"WhatsApp answered HTTP {response.status_code}")
    code = error.get("code") if isinstance(error.get("code"), int) else None
    reason = describe(error, mask=token)
    if code in THROTTLED:
        wait = retry_after(response)
        if wait is None and code == 131056:
            wait = PAIR_RATE_SECONDS
        # 131056 limits one business-customer pair: hold that message, not the number.
        details = {"per_receiver": "true"} if code == 131056 else {}
        return ProviderError(
            "throttled",
            error_code(code),
            reason,
            retry_after=wait,
            provider_status=str(response.status_code),
            details=details,
        )
    if code in TRANSIENT:
        return answer_error(response, "transient", error_code(code), reason)
    if code == OUTSIDE_WINDOW or code in AUTH or code in PERMANENT:
        return answer_error(response, "permanent", error_code(code), reason)
    return status_error(response, PREFIX, reason, code=None if code is None else error_code(code))


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    error = json_object(response).get("error")
    return error if isinstance(error, dict) else None


__all__ = [
    "AUTH_CODE",
    "OUTSIDE_WINDOW_CODE",
    "OUTSIDE_WINDOW_REASON",
    "PREFIX",
    "describe",
    "error_code",
    "graph_error",
]
