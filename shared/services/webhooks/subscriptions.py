"""Webhook subscriptions: create, read, change, delete; their signing secrets and
custom headers (in the secret store).

The document and secret formats are in shared/domain/webhooks.py. Deliveries are made
by shared.services.webhooks.fanout (create_delivery; jobs: enqueue) and attempted by
the deliverer, which re-checks the endpoint's address on every connection: what this
module checks at create and update is early feedback, not the guard.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson

from shared.containers import WEBHOOKS
from shared.domain.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhook_endpoints import header_errors, url_error
from shared.domain.webhooks import (
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
    new_secret,
    rotate,
    webhook_headers_name,
    webhook_secret_name,
)
from shared.egress import EgressRefused, resolve
from shared.ports import Page, Query
from shared.services import concurrency
from shared.services.deps import Deps
from shared.services.events import interest
from shared.services.pages import in_creation_order

MAX_WEBHOOKS = 100
"""Per tenant: the fan-out reads a tenant's subscriptions whole for every event."""
RESOLVE_TIMEOUT = 3.0
PUBLIC_FIELDS = tuple(f for f in WebhookPublic.model_fields if f != "header_names")


def public(doc: Document) -> Document:
    """The API's view of a subscription: custom header values are write-only."""
    return {
        **{k: doc.get(k) for k in PUBLIC_FIELDS},
        # A subscription made before the values moved to the secret store has "headers".
        "header_names": doc.get("header_names") or sorted(doc.get("headers") or {}),
    }


async def create_webhook(deps: Deps, tenant_id: str, data: WebhookCreate) -> tuple[Document, str]:
    """A new subscription and its signing secret (returned once). Its custom header
    values go to the secret store; the document keeps their names only."""
    await check_url(deps, data.url)
    _check_headers(data.headers)
    existing = await deps.store.query(WEBHOOKS, Query(scope=tenant_id, limit=MAX_WEBHOOKS))
    if len(existing.items) >= MAX_WEBHOOKS:
        raise ConflictError(
            f"A tenant has at most {MAX_WEBHOOKS} webhooks", code="WEBHOOK_LIMIT_REACHED"
        )
    now = to_utc_text(deps.clock.now())
    doc: Document = {
        "id": new_id("whk"),
        "tenant_id": tenant_id,
        **data.model_dump(mode="json", exclude={"headers"}),
        "header_names": sorted(data.headers),
        "disabled_reason": None,
        "failing_since": None,
        "failing_warned": False,
        "created_at": now,
        "updated_at": now,
    }
    secret = new_secret()
    # The secret first: a subscription must never exist without one to sign with.
    entries = [{"secret": secret, "expires_at": None}]
    await deps.secrets.set(webhook_secret_name(doc["id"]), orjson.dumps(entries).decode())
    if data.headers:  # likewise its header values: never named without them
        await _set_headers(deps, doc["id"], data.headers)
    written = await deps.store.create(WEBHOOKS, doc)
    interest.forget(deps, tenant_id)
    return written, secret


async def list_webhooks(deps: Deps, tenant_id: str, *, limit: int, cursor: str | None) -> Page:
    return await in_creation_order(deps.store, WEBHOOKS, tenant_id, limit=limit, cursor=cursor)


async def get_webhook(deps: Deps, tenant_id: str, webhook_id: str) -> Document:
    doc = await deps.store.read(WEBHOOKS, tenant_id, webhook_id)
    if doc is None:
        raise NotFoundError(f"No webhook {webhook_id!r}", code="WEBHOOK_NOT_FOUND")
    return doc


async def update_webhook(
    deps: Deps, tenant_id: str, webhook_id: str, data: WebhookUpdate
) -> Document:
    changes: dict[str, Any] = data.model_dump(mode="json", exclude_unset=True)
    required = ("url", "events", "filters", "headers", "enabled")
    nulls = [k for k in required if k in changes and changes[k] is None]
    if nulls:
        raise ValidationFailed(
            "These fields cannot be null", errors=[FieldError(k, "cannot be null") for k in nulls]
        )
    if not changes:
        raise ValidationFailed("Nothing to change", errors=[FieldError("body", "empty")])
    if "url" in changes:
        await check_url(deps, changes["url"])
    headers: dict[str, str] | None = changes.pop("headers", None)
    if headers is not None:
        _check_headers(headers)
        await get_webhook(deps, tenant_id, webhook_id)  # the tenant's own, before writing
        # The values first, as at create; the document keeps the names.
        await _set_headers(deps, webhook_id, headers)
        changes["header_names"] = sorted(headers)

    async def change(doc: Document) -> None:
        fresh_start = (changes.get("enabled") and not doc["enabled"]) or (
            changes.get("url", doc["url"]) != doc["url"]
        )
        if fresh_start:  # a re-enabled or moved endpoint starts with a clean record
            doc.update(failing_since=None, failing_warned=False, disabled_reason=None)
        if changes.get("enabled") is False:
            doc["disabled_reason"] = None  # disabled by its owner: no reason of OCM's
        if headers is not None:
            doc.pop("headers", None)  # values kept on a document made before the move
        doc.update(changes, updated_at=to_utc_text(deps.clock.now()))

    tries = concurrency.for_request("The webhook changed while updating")
    written = await concurrency.rewrite(
        deps.store, WEBHOOKS, lambda: get_webhook(deps, tenant_id, webhook_id), change, tries
    )
    interest.forget(deps, tenant_id)
    return written


async def delete_webhook(deps: Deps, tenant_id: str, webhook_id: str) -> None:
    """Delete the subscription, its signing secrets and its header values; the
    deliverer, no longer finding it, fails its pending deliveries. Its delivery
    records expire as usual."""
    await get_webhook(deps, tenant_id, webhook_id)
    await deps.store.delete(WEBHOOKS, tenant_id, webhook_id)
    interest.forget(deps, tenant_id)
    await deps.secrets.delete(webhook_secret_name(webhook_id))
    await deps.secrets.delete(webhook_headers_name(webhook_id))  # a missing one is fine


async def check_url(deps: Deps, url: str) -> None:
    """Refuse an endpoint that could never be delivered to: a malformed URL, plain
    http in production, or a host that is (or resolves to) an address the egress
    guard refuses. A name that does not resolve (yet) is accepted: DNS may lag behind
    a new endpoint, and every delivery resolves and checks again anyway."""
    problem = url_error(url)
    if problem:
        raise ValidationFailed(
            f"The URL {problem}", code="WEBHOOK_URL_INVALID", errors=[FieldError("url", problem)]
        )
    parts = urlsplit(url)
    if deps.settings.OCM_ENV == "production" and parts.scheme != "https":
        raise ValidationFailed(
            "Webhook URLs must be https in production",
            code="WEBHOOK_URL_NOT_HTTPS",
            errors=[FieldError("url", "must be https")],
        )
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    allow_private = deps.settings.private_egress_allowed
    try:  # a literal address resolves to itself, without a DNS query
        await asyncio.wait_for(resolve(host, port, allow_private=allow_private), RESOLVE_TIMEOUT)
    except EgressRefused as exc:
        raise ValidationFailed(
            f"Webhooks may not be sent to {host}: {exc}",
            code="WEBHOOK_URL_NOT_ALLOWED",
            errors=[FieldError("url", "points to an address OCM does not deliver to")],
        ) from None
    except (OSError, TimeoutError):
        return  # does not resolve now; deliveries will retry and record why


async def _set_headers(deps: Deps, webhook_id: str, headers: dict[str, str]) -> None:
    """Keep the custom header values (the whole set) in the secret store. An empty set
    is written as ``{}`` rather than deleted: a deleted Key Vault name stays reserved
    (soft delete, purge protection), so headers set again later could not be kept
    under it. The name is deleted with the subscription, whose id is never reused."""
    await deps.secrets.set(webhook_headers_name(webhook_id), orjson.dumps(headers).decode())


def _check_headers(headers: dict[str, str]) -> None:
    errors = header_errors(headers)
    if errors:
        raise ValidationFailed(
            "Some custom headers cannot be sent", code="WEBHOOK_HEADER_NOT_ALLOWED", errors=errors
        )


async def rotate_secret(deps: Deps, tenant_id: str, webhook_id: str) -> tuple[str, str | None]:
    """A new secret, signing from now; the current one keeps signing alongside it for
    ``OCM_WEBHOOK_SECRET_GRACE_SECONDS``. Returns the new secret and when the old
    one stops (None: at once)."""
    await get_webhook(deps, tenant_id, webhook_id)
    name = webhook_secret_name(webhook_id)
    stored = await deps.secrets.get(name)
    secret = new_secret()
    grace = deps.settings.OCM_WEBHOOK_SECRET_GRACE_SECONDS
    entries = rotate(orjson.loads(stored) if stored else [], secret, deps.clock.now(), grace)
    await deps.secrets.set(name, orjson.dumps(entries).decode())
    return secret, entries[1]["expires_at"] if len(entries) > 1 else None
