"""Webhook subscriptions: create, read, change, delete; their signing secrets; their
deliveries, retried, replayed and tested.

The document and secret formats are in shared/domain/webhooks.py. Deliveries are made
by shared.services.webhooks.fanout (create_delivery; jobs: enqueue) and attempted by
the deliverer, which re-checks the endpoint's address on every connection: what this
module checks at create and update is early feedback, not the guard.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from shared.containers import EVENTS, WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhook_endpoints import header_errors, url_error
from shared.domain.webhooks import (
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
    matches,
    new_secret,
    rotate,
    webhook_headers_name,
    webhook_secret_name,
)
from shared.egress import EgressRefused, resolve
from shared.ports import Filter, Page, PreconditionFailed, Query
from shared.services.deps import Deps
from shared.services.events import interest, publish
from shared.services.pages import list_page
from shared.services.webhooks import fanout as webhook_fanout
from shared.services.webhooks import jobs
from shared.services.webhooks.jobs import WebhookJob

MAX_WEBHOOKS = 100
"""Per tenant: the fan-out reads a tenant's subscriptions whole for every event."""
RESOLVE_TIMEOUT = 3.0
REPLAY_PAGE = 500
REPLAY_MAX = 10_000
"""Events one replay request re-delivers at most: it runs within the request (an
Azure HTTP function has 230 s), so a larger window is refused, to be replayed in
shorter ones, rather than half done."""
INTERNAL_FIELDS = ("_etag", "tenant_id", "ttl")
"""Of a delivery: kept from the API's view."""


PUBLIC_FIELDS = tuple(f for f in WebhookPublic.model_fields if f != "header_names")


def public(doc: Document) -> Document:
    """The API's view of a subscription: custom header values are write-only."""
    return {
        **{k: doc.get(k) for k in PUBLIC_FIELDS},
        # A subscription made before the values moved to the secret store has "headers".
        "header_names": doc.get("header_names") or sorted(doc.get("headers") or {}),
    }


def delivery_public(doc: Document) -> Document:
    """The API's view of a delivery: the payload sent and every attempt."""
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


# --- subscriptions -------------------------------------------------------------------


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
    query = Query(scope=tenant_id, order_by="created_at", limit=limit, cursor=cursor)
    return await list_page(deps.store, WEBHOOKS, query)


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
    for _ in range(3):
        doc = await get_webhook(deps, tenant_id, webhook_id)
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
        try:
            written = await deps.store.replace(WEBHOOKS, doc, etag=doc["_etag"])
        except PreconditionFailed:
            continue
        interest.forget(deps, tenant_id)
        return written
    raise ConflictError("The webhook changed while updating; try again", code="CONCURRENT_UPDATE")


async def delete_webhook(deps: Deps, tenant_id: str, webhook_id: str) -> None:
    """Delete the subscription, its signing secrets and its header values; the
    deliverer, no longer finding it, fails its pending deliveries. Its delivery
    records expire as usual."""
    await get_webhook(deps, tenant_id, webhook_id)
    await deps.store.delete(WEBHOOKS, tenant_id, webhook_id)
    interest.forget(deps, tenant_id)
    await deps.secrets.delete(webhook_secret_name(webhook_id))
    await deps.secrets.delete(webhook_headers_name(webhook_id))  # a missing one is fine


# --- the endpoint's address and headers ---------------------------------------------


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


# --- signing secrets -----------------------------------------------------------------


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


# --- deliveries ----------------------------------------------------------------------


async def list_deliveries(
    deps: Deps,
    tenant_id: str,
    webhook_id: str,
    *,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Page:
    """A subscription's deliveries, newest first; ``since`` and ``until`` bound when
    they were created (``until`` excluded)."""
    await get_webhook(deps, tenant_id, webhook_id)
    where = [Filter("webhook_id", "eq", webhook_id)]
    if status is not None:
        where.append(Filter("status", "eq", status))
    if since is not None:
        where.append(Filter("created_at", "gte", to_utc_text(since)))
    if until is not None:
        where.append(Filter("created_at", "lt", to_utc_text(until)))
    query = Query(
        scope=tenant_id,
        where=tuple(where),
        order_by="created_at",
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return await list_page(deps.store, WEBHOOK_DELIVERIES, query)


async def get_delivery(deps: Deps, tenant_id: str, webhook_id: str, delivery_id: str) -> Document:
    await get_webhook(deps, tenant_id, webhook_id)
    return await _read_delivery(deps, tenant_id, webhook_id, delivery_id)


async def _read_delivery(deps: Deps, tenant_id: str, webhook_id: str, delivery_id: str) -> Document:
    """The delivery, once its subscription is known to exist."""
    doc = await deps.store.read(WEBHOOK_DELIVERIES, tenant_id, delivery_id)
    if doc is None or doc.get("webhook_id") != webhook_id:
        raise NotFoundError(f"No delivery {delivery_id!r}", code="WEBHOOK_DELIVERY_NOT_FOUND")
    return doc


async def retry_delivery(deps: Deps, tenant_id: str, webhook_id: str, delivery_id: str) -> Document:
    """One more attempt of a finished delivery (delivered or failed), now."""
    await _enabled(deps, tenant_id, webhook_id)
    doc = await _read_delivery(deps, tenant_id, webhook_id, delivery_id)
    if doc["status"] == "pending":
        # Its next attempt is queued already (under the id a retry would take).
        raise ConflictError(
            "This delivery is still being attempted", code="WEBHOOK_DELIVERY_PENDING"
        )
    now = to_utc_text(deps.clock.now())
    try:
        written = await deps.store.patch(
            WEBHOOK_DELIVERIES,
            tenant_id,
            delivery_id,
            {
                "status": "pending",
                "next_attempt_at": now,
                "updated_at": now,
                "retries": int(doc.get("retries") or 0) + 1,
            },
            etag=doc["_etag"],
        )
    except PreconditionFailed:
        raise ConflictError(
            "The delivery changed while retrying; try again", code="CONCURRENT_UPDATE"
        ) from None
    attempt, retry = int(doc["attempt_count"]) + 1, int(written["retries"])
    await jobs.enqueue(deps, WebhookJob.of(written, attempt, retry))
    return written


async def replay(
    deps: Deps, tenant_id: str, webhook_id: str, since: datetime, until: datetime
) -> tuple[str, int]:
    """Deliver again every event of ``[since, until)`` that the subscription's current
    filters take, as new deliveries. Returns the replay's id and how many."""
    retention = timedelta(days=deps.settings.OCM_EVENT_RETENTION_DAYS)
    if until <= since:
        raise ValidationFailed(
            "until must be after since",
            code="REPLAY_WINDOW_INVALID",
            errors=[FieldError("until", "must be after since")],
        )
    if until - since > retention:
        raise ValidationFailed(
            f"A replay covers at most the event retention ({retention.days} days)",
            code="REPLAY_WINDOW_INVALID",
            errors=[FieldError("since", f"at most {retention.days} days before until")],
        )
    subscription = await _enabled(deps, tenant_id, webhook_id)
    replay_id = new_id("rpl")
    # Times are kept to the millisecond: round both ends up, so [since, until) holds.
    where = (
        Filter("timestamp", "gte", to_utc_text(_ceil_ms(since))),
        Filter("timestamp", "lt", to_utc_text(_ceil_ms(until))),
    )
    wanted: list[Document] = []
    cursor = None
    while True:  # every event first: a window too large is refused before any is sent
        page = await deps.store.query(
            EVENTS,
            Query(
                scope=tenant_id, where=where, order_by="timestamp", limit=REPLAY_PAGE, cursor=cursor
            ),
        )
        wanted += [e for e in page.items if matches(subscription, e)]
        if len(wanted) > REPLAY_MAX:
            raise ValidationFailed(
                f"A replay re-delivers at most {REPLAY_MAX} events; this window holds more: "
                "replay it in shorter windows",
                code="REPLAY_WINDOW_TOO_LARGE",
                errors=[FieldError("since", f"the window holds over {REPLAY_MAX} events")],
            )
        cursor = page.next_cursor
        if cursor is None:
            break
    for start in range(0, len(wanted), REPLAY_PAGE):
        await webhook_fanout.create_deliveries(
            deps, subscription, wanted[start : start + REPLAY_PAGE], purpose=f"replay:{replay_id}"
        )
    return replay_id, len(wanted)


def _ceil_ms(at: datetime) -> datetime:
    extra = at.microsecond % 1000
    return at + timedelta(microseconds=1000 - extra) if extra else at


async def send_test(deps: Deps, tenant_id: str, webhook_id: str) -> Document:
    """A signed ``webhook.test`` event to this subscription alone (not kept for replay)."""
    subscription = await _enabled(deps, tenant_id, webhook_id)
    now = deps.clock.now()
    data = {"webhook_id": webhook_id}
    event = publish.platform_event(tenant_id, "webhook.test", data, now, new_id("evt_test", now))
    return await webhook_fanout.create_delivery(deps, subscription, event, purpose="test")


async def _enabled(deps: Deps, tenant_id: str, webhook_id: str) -> Document:
    """The subscription, if enabled: the deliverer sends nothing to a disabled one."""
    doc = await get_webhook(deps, tenant_id, webhook_id)
    if not doc.get("enabled"):
        raise ConflictError(
            "The webhook is disabled; enable it first (PATCH enabled: true)",
            code="WEBHOOK_DISABLED",
        )
    return doc
