"""``Idempotency-Key``: the same key and body get the same answer for 24 h.

Scoped to tenant, credential (application or user) and route. The record is created
before the work starts (so a concurrent duplicate sees it in flight) and completed with
the answer; a failure that is not the client's (5xx) deletes it so the client may retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from shared.containers import IDEMPOTENCY
from shared.domain.errors import ConflictError, FieldError, ValidationFailed
from shared.domain.ids import digest
from shared.domain.messages import to_utc_text
from shared.domain.models import Document
from shared.ports import Conflict, PreconditionFailed
from shared.services.deps import Deps

MAX_KEY_LENGTH = 255
IN_FLIGHT_TIMEOUT = timedelta(minutes=2)
"""An in-flight record older than this belongs to a request that died."""


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: Any


@dataclass(frozen=True, slots=True)
class Claim:
    record: Document


def body_hash(body: Any) -> str:
    """Hash of canonical JSON: key order and whitespace do not matter."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raise ValidationFailed(
            "The JSON is nested too deeply", errors=[FieldError("body", "too deeply nested")]
        ) from None
    return hashlib.sha256(canonical).hexdigest()


def _record_id(tenant_id: str, holder: str, route: str, key: str) -> str:
    return f"idem_{digest(tenant_id, holder, route, key).hex()[:40]}"


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable characters",
            code="IDEMPOTENCY_KEY_INVALID",
            errors=[FieldError("Idempotency-Key", "1 to 255 printable characters")],
        )
    return key


async def begin(
    deps: Deps, tenant_id: str, route: str, key: str, fingerprint: str, *, holder: str
) -> Replay | Claim:
    """Claim the key for this request, or return the answer already given. Keys are
    the ``holder``'s (a credential: an application, or a user): one credential never
    replays another's answer, whose checks it might not have passed."""
    now = deps.clock.now()
    record: Document = {
        "id": _record_id(tenant_id, holder, route, check_key(key)),
        "tenant_id": tenant_id,
        "holder": holder,
        "route": route,
        "body_sha256": fingerprint,
        "state": "in_flight",
        "started_at": to_utc_text(now),
        "ttl": deps.settings.OCM_IDEMPOTENCY_TTL_SECONDS,
    }
    try:
        return Claim(await deps.store.create(IDEMPOTENCY, record))
    except Conflict:
        pass
    existing = await deps.store.read(IDEMPOTENCY, tenant_id, record["id"])
    if existing is None:  # expired between the two calls
        return Claim(await deps.store.upsert(IDEMPOTENCY, record))
    if existing["body_sha256"] != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was used with a different request body",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    if existing["state"] == "done":
        return Replay(existing["status_code"], existing["response"])
    if now - datetime.fromisoformat(existing["started_at"]) < IN_FLIGHT_TIMEOUT:
        raise ConflictError(
            "A request with this Idempotency-Key is still in progress",
            code="IDEMPOTENCY_KEY_IN_USE",
            headers={"Retry-After": "1"},
        )
    try:
        return Claim(await deps.store.replace(IDEMPOTENCY, record, etag=existing["_etag"]))
    except PreconditionFailed:
        raise ConflictError(
            "A request with this Idempotency-Key is still in progress",
            code="IDEMPOTENCY_KEY_IN_USE",
            headers={"Retry-After": "1"},
        ) from None


async def complete(deps: Deps, claim: Claim, status_code: int, response: Any) -> None:
    record = {**claim.record, "state": "done", "status_code": status_code, "response": response}
    record.pop("_etag", None)
    await deps.store.upsert(IDEMPOTENCY, record)


async def abandon(deps: Deps, claim: Claim) -> None:
    await deps.store.delete(IDEMPOTENCY, claim.record["tenant_id"], claim.record["id"])
