"""A subscription's deliveries: listed, read, retried by hand, replayed over a window
of past events, and a test event sent on demand. The fan-out makes deliveries
(``fanout``) and the deliverer attempts them (``deliverer``); these are the API's."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.containers import EVENTS, WEBHOOK_DELIVERIES
from shared.domain.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from shared.domain.ids import new_id
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.domain.webhooks import (
    matches,
)
from shared.ports import Filter, Page, PreconditionFailed, Query
from shared.services.deps import Deps
from shared.services.events import publish
from shared.services.pages import created_between, every_page, in_creation_order
from shared.services.webhooks import fanout as webhook_fanout
from shared.services.webhooks import jobs
from shared.services.webhooks.jobs import WebhookJob
from shared.services.webhooks.subscriptions import get_webhook

REPLAY_PAGE = 500
REPLAY_MAX = 10_000
"""Events one replay request re-delivers at most: it runs within the request (an
Azure HTTP function has 230 s), so a larger window is refused, to be replayed in
shorter ones, rather than half done."""
INTERNAL_FIELDS = ("_etag", "tenant_id", "ttl")
"""Of a delivery: kept from the API's view."""


def delivery_public(doc: Document) -> Document:
    """The API's view of a delivery: the payload sent and every attempt."""
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}


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
    where += created_between(since, until)
    return await in_creation_order(
        deps.store,
        WEBHOOK_DELIVERIES,
        tenant_id,
        where=where,
        newest_first=True,
        limit=limit,
        cursor=cursor,
    )


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
    query = Query(scope=tenant_id, where=where, order_by="timestamp", limit=REPLAY_PAGE)
    wanted: list[Document] = []
    # Every event first: a window too large is refused before any is sent.
    async for page in every_page(deps.store, EVENTS, query):
        wanted += [e for e in page if matches(subscription, e)]
        if len(wanted) > REPLAY_MAX:
            raise ValidationFailed(
                f"A replay re-delivers at most {REPLAY_MAX} events; this window holds more: "
                "replay it in shorter windows",
                code="REPLAY_WINDOW_TOO_LARGE",
                errors=[FieldError("since", f"the window holds over {REPLAY_MAX} events")],
            )
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
