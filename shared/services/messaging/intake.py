"""Accept outbound messages, one or a batch.

Accepting never calls a provider: it validates, persists the message with its
dispatch job and ``message.queued``/``message.scheduled`` event, hands both to
the queue, and answers. A batch's items are accepted or refused one by one, and the
accepted ones written together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from shared import telemetry
from shared.domain.errors import (
    FieldError,
    OcmError,
    PayloadTooLarge,
    ValidationFailed,
)
from shared.domain.ids import new_id
from shared.domain.message_document import MessageDocument
from shared.domain.messages import (
    MAX_CONTEXT_BYTES,
    MAX_JSON_DEPTH,
    MessageCreate,
    json_depth_within,
)
from shared.domain.models import Document
from shared.services.deps import Deps
from shared.services.identity import limits, rates, tenants
from shared.services.messaging import outbox, repository
from shared.services.messaging.compose import ChannelCache, make_message
from shared.services.messaging.messages import public

MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH = 1000


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(prefix + ".".join(str(p) for p in err["loc"]) or "body", err["msg"])
        for err in exc.errors(include_url=False)
    ]


def parse_message(raw: Any, *, size: int | None = None, extra: int = 0) -> MessageCreate:
    """Validate one message's shape.

    ``size`` is its JSON size when already known; ``extra`` counts what the message
    will carry besides (a batch's shared context) against the same limit.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed("A message is a JSON object", errors=[FieldError("body", "object")])
    size = (_json_size(raw, "body") if size is None else size) + extra
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"A message may be at most {MAX_MESSAGE_BYTES} bytes of JSON; this one is {size}",
            code="MESSAGE_TOO_LARGE",
        )
    try:
        return MessageCreate.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("The message is not valid", errors=field_errors(exc)) from None


def _json_size(value: Any, field: str, depth: int | None = None) -> int:
    """The JSON size of a value, refusing what nests deeper than ``depth`` (free-form
    parts: the model's own validators limit those inside a message) or deeper than
    JSON encoders go."""
    if depth is not None and not json_depth_within(value, depth):
        raise ValidationFailed(
            "The JSON is nested too deeply",
            errors=[FieldError(field, f"nests deeper than {depth} levels")],
        )
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise ValidationFailed(
            "The JSON is nested too deeply", errors=[FieldError(field, "nests too deeply")]
        ) from None


async def accept_message(
    deps: Deps, tenant_id: str, raw: Any, *, size: int | None = None, app_id: str | None = None
) -> Document:
    """Accept one message (``app_id``: the sending application, for analytics)."""
    with telemetry.span("accept", tenant_id=tenant_id) as span:
        msg = parse_message(raw, size=size)
        doc = await make_message(
            deps,
            tenant_id,
            raw,
            msg,
            ChannelCache(deps, tenant_id),
            deps.clock.now(),
            traceparent=telemetry.traceparent(),
        )
        span.set_attribute("ocm.message_id", doc["id"])
        if app_id is not None:
            doc["app_id"] = app_id
        await reserve(deps, tenant_id, 1)
        await repository.create(deps, doc)
        await outbox.hand_off(deps, [doc], clear=False, best_effort=True)
    return public(doc)


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch_id: str
    items: list[dict[str, Any]]


async def accept_batch(
    deps: Deps,
    tenant_id: str,
    messages: list[Any],
    context: dict[str, Any],
    *,
    app_id: str | None = None,
) -> BatchResult:
    """Each item is accepted or refused on its own; accepted ones are written together."""
    if len(messages) > MAX_BATCH:
        raise PayloadTooLarge(
            f"A batch holds at most {MAX_BATCH} messages; this one has {len(messages)}",
            code="BATCH_TOO_LARGE",
        )
    shared_context = _json_size(context, "context", MAX_JSON_DEPTH)
    if shared_context > MAX_CONTEXT_BYTES:
        raise ValidationFailed(
            "The batch is not valid",
            errors=[FieldError("context", f"at most {MAX_CONTEXT_BYTES} bytes of JSON")],
        )
    now = deps.clock.now()
    batch_id = new_id("bat", now)
    with telemetry.span("accept_batch", tenant_id=tenant_id, batch_id=batch_id):
        return await _accept_batch(
            deps, tenant_id, messages, context, shared_context, now, batch_id, app_id
        )


async def _accept_batch(
    deps: Deps,
    tenant_id: str,
    messages: list[Any],
    context: dict[str, Any],
    shared_context: int,
    now: datetime,
    batch_id: str,
    app_id: str | None,
) -> BatchResult:
    channels = ChannelCache(deps, tenant_id)
    items: list[dict[str, Any]] = []
    docs: list[MessageDocument] = []
    trace = telemetry.traceparent()
    for index, raw in enumerate(messages):
        try:
            msg = parse_message(raw, extra=shared_context)
            doc = await make_message(
                deps,
                tenant_id,
                raw,
                msg,
                channels,
                now,
                batch_id=batch_id,
                batch_context=context,
                traceparent=trace,
            )
        except OcmError as exc:
            items.append(
                {"index": index, "id": None, "status": "rejected", "error": _item_error(exc)}
            )
            continue
        if app_id is not None:
            doc["app_id"] = app_id
        docs.append(doc)
        items.append({"index": index, "id": doc["id"], "status": doc["status"], "error": None})
    if docs:
        await reserve(deps, tenant_id, len(docs))
        await repository.create_many(deps, docs)
        await outbox.hand_off(deps, docs, clear=False, best_effort=True)
    return BatchResult(batch_id=batch_id, items=items)


async def reserve(deps: Deps, tenant_id: str, count: int) -> None:
    """Count the messages against the tenant's message rate and its quotas (and its
    ancestors'), or refuse them all."""
    lineage = await tenants.lineage(deps, tenant_id)
    await rates.take_messages(deps, lineage, count)
    await limits.reserve_for_lineage(deps, lineage, count)


def _item_error(exc: OcmError) -> dict[str, Any]:
    return {
        "code": exc.code,
        "detail": exc.detail,
        "errors": [{"field": e.field, "message": e.message} for e in exc.errors],
    }
