"""Every accepted message can travel (azure review R1): its events are Service Bus
messages, at most 256 KB on Standard, and one that does not fit wedged the outbox.
A message's context is bounded at intake, a provider's reason is cut, so the
largest accepted outbound message's largest event stays far below the limit."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson

from shared.containers import MESSAGES
from shared.domain.messages import MAX_CONTEXT_BYTES
from shared.domain.timeline import MAX_REASON, change_status, error_info, event_payload
from shared.services.deps import Deps
from shared.services.onboarding import signup

SERVICE_BUS_STANDARD_MAX = 256 * 1024


def message(context: dict[str, str]) -> dict[str, object]:
    return {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "bob@example.com"},
        "content": {"type": "text", "text": "hi"},
        "context": context,
        "tags": [f"{i:02d}" + "t" * 62 for i in range(20)],
    }


async def tenant_key(api: httpx.AsyncClient, deps: Deps) -> tuple[str, dict[str, str]]:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    await api.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key)
    return created.tenant["id"], key


async def test_a_context_too_large_to_travel_is_refused_at_intake(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    _, key = await tenant_key(api, deps)
    # 261 877 bytes of JSON passed before (the API's whole-message limit).
    refused = await api.post(
        "/api/v1/messages", json=message({"blob": "x" * (MAX_CONTEXT_BYTES + 1)}), headers=key
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert any(e["field"].startswith("context") for e in problem["errors"]), problem
    batch = {"messages": [message({"blob": "x" * (MAX_CONTEXT_BYTES + 1)})]}
    in_batch = await api.post("/api/v1/messages/batch", json=batch, headers=key)
    assert in_batch.status_code == 202, in_batch.text
    [item] = in_batch.json()["items"]
    assert item["status"] == "rejected" and item["error"]["code"] == "VALIDATION_FAILED"
    assert item["error"]["errors"][0]["field"] == "context"


async def test_the_largest_accepted_message_has_events_that_fit_with_room(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    tenant_id, key = await tenant_key(api, deps)
    context = {"blob": "x" * (MAX_CONTEXT_BYTES - 20)}
    accepted = await api.post("/api/v1/messages", json=message(context), headers=key)
    assert accepted.status_code == 202, accepted.text
    doc = await deps.store.read(MESSAGES, tenant_id, accepted.json()["id"])
    assert doc is not None
    # A provider that answers a failure with a whole HTML page as its reason:
    error = error_info("PROVIDER_ERROR", "<html>" + "e" * 500_000, permanent=True)
    assert len(error["reason"]) <= MAX_REASON
    change_status(doc, "failed", datetime.now(UTC), attempt=1, error=error)
    sizes = [len(orjson.dumps(event_payload(doc, entry))) for entry in doc["events"]]
    assert sizes and max(sizes) < SERVICE_BUS_STANDARD_MAX // 8, sizes


async def test_a_batch_context_is_held_to_the_same_bound_with_its_items(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    """A batch's context is merged into each item's: the bound holds for the merge."""
    _, key = await tenant_key(api, deps)
    half = "y" * (MAX_CONTEXT_BYTES // 2 + 100)
    whole = {"messages": [message({})], "context": {"blob": "x" * (MAX_CONTEXT_BYTES + 1)}}
    refused = await api.post("/api/v1/messages/batch", json=whole, headers=key)
    assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_FAILED"
    merged = {
        "messages": [message({"own": half}), message({"small": "ok"})],
        "context": {"shared": half},
    }
    answer = await api.post("/api/v1/messages/batch", json=merged, headers=key)
    assert answer.status_code == 202, answer.text
    first, second = answer.json()["items"]
    assert first["status"] == "rejected" and first["error"]["errors"][0]["field"] == "context"
    assert second["status"] == "queued"
