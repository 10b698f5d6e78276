"""One webhook attempt: sign the event (Standard Webhooks, every live secret), POST
it through the egress guard, and say what came of it (an ``Answer``).

Headers: ``webhook-id`` (the event id, stable across retries, so receivers dedupe),
``webhook-timestamp``, ``webhook-signature`` (one ``v1,…`` per secret, space-separated,
for rotation) and the subscription's custom headers, which cannot override those;
their values are read from the secret store, like the signing secrets, and only
for a subscription that names some. One guarded httpx client per platform, built on
first use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx
import orjson
from standardwebhooks import Webhook

from shared.domain.models import Document
from shared.domain.webhook_endpoints import header_errors
from shared.domain.webhooks import (
    live_secrets,
    payload,
    webhook_headers_name,
    webhook_secret_name,
)
from shared.egress import EgressRefused
from shared.http_client import retry_after
from shared.services.deps import Deps

log = logging.getLogger(__name__)

Verdict = Literal["delivered", "retry", "failed", "gone"]
RESPONSE_KEPT = 1024
DRAIN_LIMIT = 64 * 1024
"""Bytes of an answer read at most: enough to reuse the connection after a usual
answer, not so much that an endpoint could make us download a file."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt came to."""

    verdict: Verdict
    status_code: int | None = None
    latency_ms: int = 0
    response: str = ""
    error: str | None = None
    retry_after: float | None = None


async def attempt(deps: Deps, doc: Document, subscription: Document) -> Answer:
    url = str(subscription["url"])
    if deps.settings.OCM_ENV == "production" and not url.lower().startswith("https://"):
        return Answer("failed", error="WEBHOOK_URL_NOT_HTTPS")
    now = deps.clock.now()
    secrets = await signing_secrets(deps, str(subscription["id"]), now)
    if not secrets:
        return Answer("failed", error="WEBHOOK_SECRET_MISSING")
    custom = await custom_headers(deps, subscription)
    if custom is None:  # named, but not in the secret store: not sent without them
        return Answer("failed", error="WEBHOOK_HEADERS_MISSING")
    body = orjson.dumps(payload(doc["event"]))
    headers = signed_headers(secrets, str(doc["event_id"]), now, body, custom)
    return await _post(deps, url, body, headers)


async def signing_secrets(deps: Deps, webhook_id: str, now: datetime) -> list[str]:
    """Every secret of the subscription that has not expired (rotation signs twice)."""
    stored = await deps.secrets.get(webhook_secret_name(webhook_id))
    return [str(e["secret"]) for e in live_secrets(orjson.loads(stored) if stored else [], now)]


async def custom_headers(deps: Deps, subscription: Document) -> dict[str, str] | None:
    """The subscription's custom headers (None: it names some the secret store lacks).
    The store is read only if the subscription names any: one without costs nothing."""
    if subscription.get("header_names"):
        stored = await deps.secrets.get(webhook_headers_name(str(subscription["id"])))
        return {str(k): str(v) for k, v in orjson.loads(stored).items()} if stored else None
    # Made before the values moved to the secret store: they are on the document.
    return dict(subscription.get("headers") or {})


def signed_headers(
    secrets: list[str], msg_id: str, now: datetime, body: bytes, custom: Mapping[str, str]
) -> httpx.Headers:
    """Standard Webhooks headers, one ``v1,…`` signature per secret, over the custom
    headers that may go out (the API refuses the others; a stored one is skipped)."""
    at = datetime.fromtimestamp(int(now.timestamp()), UTC)
    text = body.decode()
    headers = httpx.Headers({k: v for k, v in custom.items() if not header_errors({k: v})})
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(int(at.timestamp()))
    headers["webhook-signature"] = " ".join(Webhook(s).sign(msg_id, at, text) for s in secrets)
    headers["content-type"] = "application/json"
    headers["accept-encoding"] = "identity"  # the answer's head is kept as sent
    return headers


async def _post(deps: Deps, url: str, body: bytes, headers: httpx.Headers) -> Answer:
    timeout = deps.settings.OCM_WEBHOOK_TIMEOUT_SECONDS
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        async with asyncio.timeout(timeout):
            async with deps.webhook_http.get().stream(
                "POST", url, content=body, headers=headers
            ) as response:
                text = await _head_of(response)
    except EgressRefused:
        return Answer("failed", latency_ms=took(), error="EGRESS_REFUSED")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError):
        return Answer("failed", latency_ms=took(), error="WEBHOOK_URL_INVALID")
    except (TimeoutError, httpx.TimeoutException):
        return Answer("retry", latency_ms=took(), error="TIMEOUT")
    except httpx.HTTPError:
        return Answer("retry", latency_ms=took(), error="CONNECTION_FAILED")
    status = response.status_code
    verdict = _verdict(status)
    return Answer(
        verdict,
        status_code=status,
        latency_ms=took(),
        response=text,
        error=None if verdict == "delivered" else f"HTTP_{status}",
        retry_after=retry_after(response, deps.clock.now()) if verdict == "retry" else None,
    )


async def _head_of(response: httpx.Response) -> str:
    kept = bytearray()
    seen = 0
    async for chunk in response.aiter_raw():
        if len(kept) < RESPONSE_KEPT:
            kept += chunk[: RESPONSE_KEPT - len(kept)]
        seen += len(chunk)
        if seen > DRAIN_LIMIT:
            break
    return kept.decode("utf-8", errors="replace")


def _verdict(status: int) -> Verdict:
    """2xx delivers; 410 gives up on the endpoint; 408, 429 and 5xx retry; the rest
    (other 4xx, and 3xx: redirects are not followed) fail this delivery."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "failed"
