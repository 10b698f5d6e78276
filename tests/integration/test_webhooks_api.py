"""Webhook subscriptions through the HTTP API: create (secret shown once, idempotent),
list, read, change, delete; secret rotation; deliveries listed, retried, replayed and
tested; the event types and their schemas; bad input is a 4xx problem with a stable
code and stores nothing; another tenant's webhook is not found."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from shared.api.routers.event_types import document_webhooks
from shared.config import Settings
from shared.containers import EVENTS, WEBHOOK_DELIVERIES, WEBHOOKS
from shared.domain.messages import to_utc_text
from shared.domain.timeline import event_payload
from shared.domain.webhooks import (
    EVENT_TYPES,
    live_secrets,
    payload,
    webhook_headers_name,
    webhook_secret_name,
)
from shared.ports import Query
from shared.services.deps import Deps
from shared.services.onboarding import signup
from shared.services.webhooks import attempt as webhook_attempt
from shared.services.webhooks import fanout as webhook_fanout

WEBHOOKS_PATH = "/api/v1/webhooks"
PROBLEM = "application/problem+json"
HOOK: dict[str, Any] = {
    "url": "https://hooks.invalid/ocm",
    "events": ["message.*"],
    "description": "Order updates",
    "filters": {"channels": ["sms-main"]},
    "headers": {"Authorization": "Bearer s3cret-token", "X-Env": "test"},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(OCM_DATA_DIR=tmp_path, OCM_RATE_LIMIT_PER_SECOND=0)


async def tenant_key(deps: Deps, name: str = "acme") -> dict[str, str]:
    return {"X-API-Key": (await signup.create_tenant(deps, name)).api_key}


async def create(
    api: httpx.AsyncClient, key: dict[str, str], body: dict[str, Any] = HOOK
) -> dict[str, Any]:
    answer = await api.post(WEBHOOKS_PATH, json=body, headers=key)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def problem(answer: httpx.Response, status: int, code: str) -> Any:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code, body
    return body


async def stored_secrets(deps: Deps, webhook_id: str) -> list[dict[str, Any]]:
    raw = await deps.secrets.get(webhook_secret_name(webhook_id))
    return list(orjson.loads(raw)) if raw else []


async def stored_headers(deps: Deps, webhook_id: str) -> dict[str, str] | None:
    """The custom header values kept in the secret store (None: no such secret)."""
    raw = await deps.secrets.get(webhook_headers_name(webhook_id))
    return dict(orjson.loads(raw)) if raw is not None else None


async def stored_webhook(deps: Deps, tenant_id: str, webhook_id: str) -> dict[str, Any]:
    doc = await deps.store.read(WEBHOOKS, tenant_id, webhook_id)
    assert doc is not None
    return doc


async def queued_jobs(deps: Deps) -> list[dict[str, Any]]:
    received = await deps.queue.receive(deps.settings.OCM_WEBHOOK_QUEUE, max_messages=100)
    for message in received:
        await deps.queue.complete(deps.settings.OCM_WEBHOOK_QUEUE, message)
    return [orjson.loads(m.body) for m in received]


def message_event(
    tenant_id: str, n: int, at: datetime, *, event_type: str = "message.delivered", **data: Any
) -> dict[str, Any]:
    return {
        "id": f"evt_{n:04d}",
        "type": event_type,
        "timestamp": to_utc_text(at),
        "tenant_id": tenant_id,
        "data": {
            "message_id": f"msg_{n:04d}",
            "channel": "sms-main",
            "direction": "outbound",
            "status": event_type.removeprefix("message."),
            **data,
        },
    }


# --- subscriptions -------------------------------------------------------------------


async def test_a_webhook_is_created_with_a_secret_shown_once_and_read_back(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    made = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": made.api_key}
    created = await create(api, key)
    hook, secret = created["webhook"], created["secret"]
    assert hook["id"].startswith("whk_")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert hook["url"] == HOOK["url"] and hook["events"] == ["message.*"]
    assert hook["filters"]["channels"] == ["sms-main"] and hook["enabled"] is True
    assert hook["header_names"] == ["Authorization", "X-Env"]
    assert "s3cret-token" not in str(created) and "headers" not in hook
    assert hook["failing_since"] is None and hook["disabled_reason"] is None
    assert await stored_secrets(deps, hook["id"]) == [{"secret": secret, "expires_at": None}]
    # The header values are in the secret store; the document (cached by every
    # instance's fan-out) names them only.
    stored = await stored_webhook(deps, made.tenant["id"], hook["id"])
    assert b"s3cret-token" not in orjson.dumps(stored) and "headers" not in stored
    assert stored["header_names"] == ["Authorization", "X-Env"]
    assert await stored_headers(deps, hook["id"]) == HOOK["headers"]

    read = await api.get(f"{WEBHOOKS_PATH}/{hook['id']}", headers=key)
    assert read.status_code == 200 and read.json() == hook
    assert secret not in read.text


async def test_webhooks_are_listed_oldest_first_a_page_at_a_time(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    made = [(await create(api, key, {**HOOK, "description": f"#{i}"}))["webhook"] for i in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(WEBHOOKS_PATH, params=params, headers=key)).json()
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [h["id"] for h in made]
    problem(
        await api.get(WEBHOOKS_PATH, params={"cursor": "nope"}, headers=key), 400, "INVALID_CURSOR"
    )


async def test_a_create_replays_by_idempotency_key_without_the_secret(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = {**await tenant_key(deps), "Idempotency-Key": "hook-1"}
    first = await api.post(WEBHOOKS_PATH, json=HOOK, headers=key)
    again = await api.post(WEBHOOKS_PATH, json=HOOK, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    assert first.json()["secret"] not in again.text
    listed = (await api.get(WEBHOOKS_PATH, headers=key)).json()["items"]
    assert len(listed) == 1
    other = await api.post(WEBHOOKS_PATH, json={**HOOK, "description": "x"}, headers=key)
    problem(other, 409, "IDEMPOTENCY_KEY_REUSED")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"events": ["message.sending"]}, "VALIDATION_FAILED"),
        ({"events": []}, "VALIDATION_FAILED"),
        ({"url": "ftp://hooks.invalid/ocm"}, "WEBHOOK_URL_INVALID"),
        ({"url": "https:///no-host"}, "WEBHOOK_URL_INVALID"),
        ({"url": "https://user:pw@hooks.invalid/"}, "WEBHOOK_URL_INVALID"),
        ({"url": "https://hooks.invalid:99999/"}, "WEBHOOK_URL_INVALID"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "WEBHOOK_URL_NOT_ALLOWED"),
        ({"url": "http://[::ffff:169.254.169.254]/"}, "WEBHOOK_URL_NOT_ALLOWED"),
        ({"url": "http://168.63.129.16/machine"}, "WEBHOOK_URL_NOT_ALLOWED"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"Content-Type": "text/plain"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"Host": "internal"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"X-A": "1\r\nX-Injected: 1"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"X-A": "line\nbreak"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"Bad Name": "1"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"headers": {"X-A": "ünïcode"}}, "WEBHOOK_HEADER_NOT_ALLOWED"),
        ({"retry_schedule": [0]}, "VALIDATION_FAILED"),
        ({"filters": {"direction": "sideways"}}, "VALIDATION_FAILED"),
        ({"unknown": 1}, "VALIDATION_FAILED"),
    ],
)
async def test_a_bad_webhook_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, deps: Deps, change: dict[str, Any], code: str
) -> None:
    key = await tenant_key(deps)
    answer = await api.post(WEBHOOKS_PATH, json={**HOOK, **change}, headers=key)
    body = problem(answer, 422, code)
    assert body["errors"], body
    assert (await api.get(WEBHOOKS_PATH, headers=key)).json()["items"] == []


async def test_private_endpoints_are_allowed_in_development_and_authorization_may_be_set(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/"):
        await create(api, key, {**HOOK, "url": url})


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.invalid/ocm", "WEBHOOK_URL_NOT_HTTPS"),
        ("https://127.0.0.1/hook", "WEBHOOK_URL_NOT_ALLOWED"),
        ("https://10.0.0.7/hook", "WEBHOOK_URL_NOT_ALLOWED"),
        ("https://[::1]/hook", "WEBHOOK_URL_NOT_ALLOWED"),
        ("https://[fe80::1]/hook", "WEBHOOK_URL_NOT_ALLOWED"),
        ("https://[::ffff:192.168.1.1]/hook", "WEBHOOK_URL_NOT_ALLOWED"),
        ("https://2130706433/hook", "WEBHOOK_URL_NOT_ALLOWED"),  # 127.0.0.1 as a number
        ("https://localhost/hook", "WEBHOOK_URL_NOT_ALLOWED"),  # a name for a private address
    ],
)
async def test_production_refuses_plain_http_and_private_destinations(
    production: tuple[httpx.AsyncClient, dict[str, str]], url: str, code: str
) -> None:
    client, key = production
    problem(await client.post(WEBHOOKS_PATH, json={**HOOK, "url": url}, headers=key), 422, code)
    assert (await client.get(WEBHOOKS_PATH, headers=key)).json()["items"] == []


async def test_production_takes_public_and_not_yet_resolvable_https_endpoints(
    production: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, key = production
    for url in ("https://93.184.215.14/hook", "https://hooks.invalid/ocm"):
        answer = await client.post(WEBHOOKS_PATH, json={**HOOK, "url": url}, headers=key)
        assert answer.status_code == 201, answer.text
    moved = answer.json()["webhook"]["id"]
    patch = await client.patch(
        f"{WEBHOOKS_PATH}/{moved}", json={"url": "https://192.168.0.1/"}, headers=key
    )
    problem(patch, 422, "WEBHOOK_URL_NOT_ALLOWED")


async def test_a_webhook_is_changed_field_by_field_and_audited(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    hook = (await create(api, key))["webhook"]
    path = f"{WEBHOOKS_PATH}/{hook['id']}"
    answer = await api.patch(
        path,
        json={
            "events": ["message.received"],
            "filters": {"direction": "inbound", "text_starts_with": "stop"},
            "headers": {"X-Other": "1"},
            "retry_schedule": [1, 60],
            "description": None,
        },
        headers=key,
    )
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["events"] == ["message.received"]
    assert changed["filters"]["text_starts_with"] == "stop"
    assert changed["header_names"] == ["X-Other"] and changed["retry_schedule"] == [1, 60]
    assert changed["description"] is None and changed["url"] == HOOK["url"]
    assert changed["updated_at"] >= hook["updated_at"]
    stored = await stored_webhook(deps, created.tenant["id"], hook["id"])
    assert stored["header_names"] == ["X-Other"] and "headers" not in stored
    assert await stored_headers(deps, hook["id"]) == {"X-Other": "1"}  # what is sent
    restored = await api.patch(path, json={"retry_schedule": None}, headers=key)
    assert restored.json()["retry_schedule"] is None
    assert restored.json()["header_names"] == ["X-Other"]  # other changes keep them
    assert await stored_headers(deps, hook["id"]) == {"X-Other": "1"}

    problem(await api.patch(path, json={}, headers=key), 422, "VALIDATION_FAILED")
    problem(await api.patch(path, json={"url": None}, headers=key), 422, "VALIDATION_FAILED")
    problem(await api.patch(path, json={"enabled": None}, headers=key), 422, "VALIDATION_FAILED")
    problem(
        await api.patch(path, json={"headers": {"Webhook-Id": "x"}}, headers=key),
        422,
        "WEBHOOK_HEADER_NOT_ALLOWED",
    )
    problem(
        await api.patch(path, json={"url": "http://169.254.169.254/"}, headers=key),
        422,
        "WEBHOOK_URL_NOT_ALLOWED",
    )
    audit = (await api.get("/api/v1/audit", headers=key)).json()["items"]
    update = next(r for r in audit if r["action"] == "webhook.update")
    assert update["target"]["fields"] == ["retry_schedule"]
    assert "s3cret-token" not in str(audit)


async def test_patched_header_values_go_to_the_secret_store_never_the_document(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    made = await signup.create_tenant(deps, "acme")
    key, tenant_id = {"X-API-Key": made.api_key}, made.tenant["id"]
    hook = (await create(api, key, {**HOOK, "headers": {}}))["webhook"]
    assert hook["header_names"] == []
    assert await stored_headers(deps, hook["id"]) is None  # none to keep
    path = f"{WEBHOOKS_PATH}/{hook['id']}"

    token = {"Authorization": "Bearer patched-t0ken"}
    answer = await api.patch(path, json={"headers": token}, headers=key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["header_names"] == ["Authorization"]
    assert "patched-t0ken" not in answer.text
    stored = await stored_webhook(deps, tenant_id, hook["id"])
    assert b"patched-t0ken" not in orjson.dumps(stored)
    assert stored["header_names"] == ["Authorization"]
    assert await stored_headers(deps, hook["id"]) == token

    cleared = await api.patch(path, json={"headers": {}}, headers=key)
    assert cleared.json()["header_names"] == []
    assert (await stored_webhook(deps, tenant_id, hook["id"]))["header_names"] == []
    assert await stored_headers(deps, hook["id"]) == {}  # the values are gone
    again = await api.patch(path, json={"headers": {"X-Key": "k2"}}, headers=key)
    assert again.json()["header_names"] == ["X-Key"]
    assert await stored_headers(deps, hook["id"]) == {"X-Key": "k2"}


async def test_a_webhook_made_before_header_values_moved_still_shows_and_moves_them(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    made = await signup.create_tenant(deps, "acme")
    key, tenant_id = {"X-API-Key": made.api_key}, made.tenant["id"]
    hook = (await create(api, key, {**HOOK, "headers": {}}))["webhook"]
    legacy = await stored_webhook(deps, tenant_id, hook["id"])
    del legacy["header_names"]
    legacy["headers"] = {"Authorization": "Bearer old-t0ken"}  # as stored before
    await deps.store.replace(WEBHOOKS, legacy)
    path = f"{WEBHOOKS_PATH}/{hook['id']}"
    assert (await api.get(path, headers=key)).json()["header_names"] == ["Authorization"]
    described = await api.patch(path, json={"description": "kept"}, headers=key)
    assert described.json()["header_names"] == ["Authorization"]

    await api.patch(path, json={"headers": {"Authorization": "Bearer new-t0ken"}}, headers=key)
    stored = await stored_webhook(deps, tenant_id, hook["id"])
    assert "headers" not in stored and stored["header_names"] == ["Authorization"]
    assert b"t0ken" not in orjson.dumps(stored)
    assert await stored_headers(deps, hook["id"]) == {"Authorization": "Bearer new-t0ken"}


async def test_enabling_a_disabled_webhook_clears_its_failure_record(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    hook = (await create(api, key))["webhook"]
    await deps.store.patch(  # as the health check leaves one it disabled
        WEBHOOKS,
        created.tenant["id"],
        hook["id"],
        {
            "enabled": False,
            "failing_since": "2026-01-01T00:00:00.000Z",
            "failing_warned": True,
            "disabled_reason": "failing since 2026-01-01T00:00:00.000Z",
        },
    )
    path = f"{WEBHOOKS_PATH}/{hook['id']}"
    assert (await api.get(path, headers=key)).json()["disabled_reason"]
    enabled = (await api.patch(path, json={"enabled": True}, headers=key)).json()
    assert enabled["enabled"] is True
    assert enabled["failing_since"] is None and enabled["failing_warned"] is False
    assert enabled["disabled_reason"] is None
    disabled = (await api.patch(path, json={"enabled": False}, headers=key)).json()
    assert disabled["enabled"] is False and disabled["disabled_reason"] is None


async def test_a_deleted_webhook_is_gone_with_its_secrets(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    hook = (await create(api, key))["webhook"]
    path = f"{WEBHOOKS_PATH}/{hook['id']}"
    assert await stored_headers(deps, hook["id"]) == HOOK["headers"]
    assert (await api.delete(path, headers=key)).status_code == 204
    problem(await api.get(path, headers=key), 404, "WEBHOOK_NOT_FOUND")
    problem(await api.delete(path, headers=key), 404, "WEBHOOK_NOT_FOUND")
    assert await stored_secrets(deps, hook["id"]) == []
    assert await stored_headers(deps, hook["id"]) is None
    actions = [r["action"] for r in (await api.get("/api/v1/audit", headers=key)).json()["items"]]
    assert {"webhook.create", "webhook.delete"} <= set(actions)


# --- secrets -------------------------------------------------------------------------


async def test_a_rotated_secret_signs_alongside_the_old_one_for_the_grace_period(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    created = await create(api, key)
    hook_id, first = created["webhook"]["id"], created["secret"]
    before = deps.clock.now()
    answer = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/rotate-secret", headers=key)
    assert answer.status_code == 200, answer.text
    second = answer.json()["secret"]
    assert second.startswith("whsec_") and second != first
    grace = timedelta(seconds=deps.settings.OCM_WEBHOOK_SECRET_GRACE_SECONDS)
    until = datetime.fromisoformat(answer.json()["previous_expires_at"])
    before = before.replace(microsecond=before.microsecond // 1000 * 1000)  # as stored
    assert before + grace <= until <= deps.clock.now() + grace
    assert await webhook_attempt.signing_secrets(deps, hook_id, deps.clock.now()) == [second, first]

    third = (await api.post(f"{WEBHOOKS_PATH}/{hook_id}/rotate-secret", headers=key)).json()
    assert await webhook_attempt.signing_secrets(deps, hook_id, deps.clock.now()) == [
        third["secret"],
        second,
        first,
    ]
    kept = await stored_secrets(deps, hook_id)
    assert kept[2]["expires_at"] == answer.json()["previous_expires_at"]  # not extended
    later = deps.clock.now() + grace + timedelta(seconds=1)
    assert [e["secret"] for e in live_secrets(kept, later)] == [third["secret"]]
    audit = (await api.get("/api/v1/audit", headers=key)).text
    assert "webhook.secret.rotate" in audit and first not in audit and second not in audit


async def test_without_a_grace_period_a_rotation_retires_the_old_secret_at_once(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    deps.settings = deps.settings.model_copy(update={"OCM_WEBHOOK_SECRET_GRACE_SECONDS": 0})
    key = await tenant_key(deps)
    hook_id = (await create(api, key))["webhook"]["id"]
    rotated = (await api.post(f"{WEBHOOKS_PATH}/{hook_id}/rotate-secret", headers=key)).json()
    assert rotated["previous_expires_at"] is None
    assert await webhook_attempt.signing_secrets(deps, hook_id, deps.clock.now()) == [
        rotated["secret"]
    ]


# --- deliveries ----------------------------------------------------------------------


async def hook_with_deliveries(
    api: httpx.AsyncClient, deps: Deps, count: int = 3
) -> tuple[dict[str, str], str, str, list[dict[str, Any]]]:
    """A tenant's webhook and ``count`` events fanned out to it, as the topic would."""
    created = await signup.create_tenant(deps, "acme")
    key, tenant_id = {"X-API-Key": created.api_key}, created.tenant["id"]
    hook_id = (await create(api, key))["webhook"]["id"]
    now = deps.clock.now()
    events = [message_event(tenant_id, n, now - timedelta(minutes=count - n)) for n in range(count)]
    for event in events:
        await webhook_fanout.fan_out(deps, orjson.dumps(event))
        await asyncio.sleep(0.002)  # each delivery created in a millisecond of its own
    return key, tenant_id, hook_id, events


async def test_deliveries_are_listed_newest_first_and_read_one_by_one(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _, hook_id, events = await hook_with_deliveries(api, deps)
    path = f"{WEBHOOKS_PATH}/{hook_id}/deliveries"
    listed = await api.get(path, headers=key)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [d["event_id"] for d in items] == [e["id"] for e in reversed(events)]
    first = items[-1]
    assert first["status"] == "pending" and first["webhook_id"] == hook_id
    assert first["event"] == payload(events[0]) and "tenant_id" not in first
    one = await api.get(f"{path}/{first['id']}", headers=key)
    assert one.status_code == 200 and one.json() == first

    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(path, params=params, headers=key)).json()
        pages += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [d["id"] for d in items]
    problem(await api.get(f"{path}/whd_nope", headers=key), 404, "WEBHOOK_DELIVERY_NOT_FOUND")


async def test_deliveries_are_filtered_by_status_and_creation_time(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, tenant_id, hook_id, _ = await hook_with_deliveries(api, deps)
    path = f"{WEBHOOKS_PATH}/{hook_id}/deliveries"
    items = (await api.get(path, headers=key)).json()["items"]
    await deps.store.patch(WEBHOOK_DELIVERIES, tenant_id, items[0]["id"], {"status": "failed"})
    failed = (await api.get(path, params={"status": "failed"}, headers=key)).json()["items"]
    assert [d["id"] for d in failed] == [items[0]["id"]]
    pending = (await api.get(path, params={"status": "pending"}, headers=key)).json()["items"]
    assert len(pending) == 2

    stamps = sorted(d["created_at"] for d in items)
    window = {"since": stamps[1], "until": stamps[2]}
    inside = (await api.get(path, params=window, headers=key)).json()["items"]
    assert [d["created_at"] for d in inside] == [stamps[1]]
    future = to_utc_text(deps.clock.now() + timedelta(hours=1))
    assert (await api.get(path, params={"since": future}, headers=key)).json()["items"] == []

    for bad in ({"status": "lost"}, {"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}):
        problem(await api.get(path, params=bad, headers=key), 422, "VALIDATION_FAILED")
    problem(await api.get(path, params={"limit": 0}, headers=key), 422, "VALIDATION_FAILED")


async def test_a_finished_delivery_is_retried_once_more_now(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, tenant_id, hook_id, _ = await hook_with_deliveries(api, deps, count=1)
    path = f"{WEBHOOKS_PATH}/{hook_id}/deliveries"
    [delivery] = (await api.get(path, headers=key)).json()["items"]
    assert await queued_jobs(deps) == [
        {"tenant_id": tenant_id, "delivery_id": delivery["id"], "attempt": 1}
    ]
    retry = f"{path}/{delivery['id']}/retry"
    problem(await api.post(retry, headers=key), 409, "WEBHOOK_DELIVERY_PENDING")

    attempts = [{"at": delivery["created_at"], "status_code": 400, "error": None}] * 3
    await deps.store.patch(  # as the deliverer leaves one that failed for good
        WEBHOOK_DELIVERIES,
        tenant_id,
        delivery["id"],
        {"status": "failed", "attempt_count": 3, "attempts": attempts, "next_attempt_at": None},
    )
    answer = await api.post(retry, headers=key)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending" and answer.json()["attempt_count"] == 3
    assert await queued_jobs(deps) == [
        {"tenant_id": tenant_id, "delivery_id": delivery["id"], "attempt": 4}
    ]
    assert (await api.get(f"{path}/{delivery['id']}", headers=key)).json()["status"] == "pending"
    problem(
        await api.post(f"{path}/whd_nope/retry", headers=key), 404, "WEBHOOK_DELIVERY_NOT_FOUND"
    )


async def test_a_delivery_is_reached_only_through_its_own_webhook(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _, hook_id, _ = await hook_with_deliveries(api, deps, count=1)
    other = (await create(api, key))["webhook"]["id"]
    [delivery] = (await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries", headers=key)).json()[
        "items"
    ]
    wrong = f"{WEBHOOKS_PATH}/{other}/deliveries/{delivery['id']}"
    problem(await api.get(wrong, headers=key), 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    problem(await api.post(f"{wrong}/retry", headers=key), 404, "WEBHOOK_DELIVERY_NOT_FOUND")


async def test_a_replay_redelivers_the_window_through_the_current_filters(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key, tenant_id = {"X-API-Key": created.api_key}, created.tenant["id"]
    hook_id = (await create(api, key))["webhook"]["id"]
    now = deps.clock.now()
    hour = timedelta(hours=1)
    kept = [
        message_event(tenant_id, 0, now - 5 * hour),  # before the window
        message_event(tenant_id, 1, now - 4 * hour),  # its first instant
        message_event(tenant_id, 2, now - 3 * hour, channel="email-main"),  # filtered out
        message_event(tenant_id, 3, now - 3 * hour, event_type="message.failed"),
        message_event(tenant_id, 4, now - 2 * hour),  # its end: excluded
    ]
    for event in kept:
        await deps.store.create(EVENTS, event)
    other = await signup.create_tenant(deps, "other")
    await deps.store.create(EVENTS, message_event(other.tenant["id"], 9, now - 3 * hour))

    window = {"since": kept[1]["timestamp"], "until": kept[4]["timestamp"]}
    answer = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/replay", json=window, headers=key)
    assert answer.status_code == 202, answer.text
    assert answer.json()["events"] == 2 and answer.json()["replay_id"].startswith("rpl_")
    listed = (await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries", headers=key)).json()
    assert sorted(d["event_id"] for d in listed["items"]) == ["evt_0001", "evt_0003"]
    jobs = await queued_jobs(deps)
    assert sorted(j["delivery_id"] for j in jobs) == sorted(d["id"] for d in listed["items"])

    again = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/replay", json=window, headers=key)
    assert again.json()["events"] == 2  # a second replay is new deliveries of its own
    listed = (await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries", headers=key)).json()
    assert len(listed["items"]) == 4
    once = {**key, "Idempotency-Key": "replay-1"}
    first = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/replay", json=window, headers=once)
    repeat = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/replay", json=window, headers=once)
    assert repeat.json() == first.json() and repeat.headers["Idempotent-Replayed"] == "true"
    listed = (await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries", headers=key)).json()
    assert len(listed["items"]) == 6
    audit = (await api.get("/api/v1/audit", headers=key)).json()["items"]
    assert any(r["action"] == "webhook.replay" and r["target"]["events"] == 2 for r in audit)


async def test_a_replay_window_must_be_ordered_and_within_the_retention(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await tenant_key(deps)
    path = f"{WEBHOOKS_PATH}/{(await create(api, key))['webhook']['id']}/replay"
    now = deps.clock.now()
    days = deps.settings.OCM_EVENT_RETENTION_DAYS
    for since, until in (
        (now, now),
        (now, now - timedelta(hours=1)),
        (now - timedelta(days=days, seconds=1), now),
    ):
        body = {"since": to_utc_text(since), "until": to_utc_text(until)}
        problem(await api.post(path, json=body, headers=key), 422, "REPLAY_WINDOW_INVALID")
    for body in (
        {"since": to_utc_text(now)},
        {"since": "2026-01-01T00:00:00", "until": to_utc_text(now)},  # no zone
        {"since": "then", "until": to_utc_text(now)},
        {"since": to_utc_text(now), "until": to_utc_text(now), "filters": {}},
    ):
        problem(await api.post(path, json=body, headers=key), 422, "VALIDATION_FAILED")


async def test_a_test_event_is_signed_and_delivered_to_that_endpoint_only(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    created = await signup.create_tenant(deps, "acme")
    key, tenant_id = {"X-API-Key": created.api_key}, created.tenant["id"]
    hook_id = (await create(api, key, {**HOOK, "events": ["message.failed"]}))["webhook"]["id"]
    await create(api, key, {**HOOK, "events": ["*"]})  # another endpoint: not tested
    answer = await api.post(f"{WEBHOOKS_PATH}/{hook_id}/test", headers=key)
    assert answer.status_code == 202, answer.text
    delivery_id, event_id = answer.json()["delivery_id"], answer.json()["event_id"]
    assert event_id.startswith("evt_test_")
    delivery = (
        await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries/{delivery_id}", headers=key)
    ).json()
    assert delivery["event"]["type"] == "webhook.test"
    assert delivery["event"]["data"] == {"webhook_id": hook_id}
    kinds = {i["type"]: i["schema"] for i in (await api.get("/api/v1/event-types")).json()["items"]}
    jsonschema.validate(delivery["event"], kinds["webhook.test"])
    assert await queued_jobs(deps) == [
        {"tenant_id": tenant_id, "delivery_id": delivery_id, "attempt": 1}
    ]
    assert (await deps.store.query(EVENTS, Query(scope=tenant_id))).items == []  # not kept


async def test_a_disabled_webhook_takes_no_retry_replay_or_test(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key, _, hook_id, _ = await hook_with_deliveries(api, deps, count=1)
    path = f"{WEBHOOKS_PATH}/{hook_id}"
    [delivery] = (await api.get(f"{path}/deliveries", headers=key)).json()["items"]
    await api.patch(path, json={"enabled": False}, headers=key)
    now = deps.clock.now()
    window = {"since": to_utc_text(now - timedelta(hours=1)), "until": to_utc_text(now)}
    for answer in (
        await api.post(f"{path}/test", headers=key),
        await api.post(f"{path}/replay", json=window, headers=key),
        await api.post(f"{path}/deliveries/{delivery['id']}/retry", headers=key),
    ):
        problem(answer, 409, "WEBHOOK_DISABLED")


# --- isolation -----------------------------------------------------------------------


async def test_another_tenants_webhook_and_its_deliveries_are_not_found(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    a, _, hook_id, _ = await hook_with_deliveries(api, deps, count=1)
    b = await tenant_key(deps, "b")
    [delivery] = (await api.get(f"{WEBHOOKS_PATH}/{hook_id}/deliveries", headers=a)).json()["items"]
    path = f"{WEBHOOKS_PATH}/{hook_id}"
    now = deps.clock.now()
    window = {"since": to_utc_text(now - timedelta(hours=1)), "until": to_utc_text(now)}
    for method, url, body in (
        ("GET", path, None),
        ("PATCH", path, {"description": "taken over"}),
        ("PATCH", path, {"headers": {"Authorization": "Bearer taken-over"}}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None),
        ("GET", f"{path}/deliveries", None),
        ("GET", f"{path}/deliveries/{delivery['id']}", None),
        ("POST", f"{path}/deliveries/{delivery['id']}/retry", None),
        ("POST", f"{path}/replay", window),
        ("POST", f"{path}/test", None),
    ):
        answer = await api.request(method, url, json=body, headers=b)
        problem(answer, 404, "WEBHOOK_NOT_FOUND")
    assert (await api.get(WEBHOOKS_PATH, headers=b)).json()["items"] == []
    mine = (await api.get(path, headers=a)).json()
    assert mine["description"] == HOOK["description"]
    assert await stored_headers(deps, hook_id) == HOOK["headers"]  # untouched
    assert len(await webhook_attempt.signing_secrets(deps, hook_id, deps.clock.now())) == 1


async def test_webhook_routes_need_their_scopes(api: httpx.AsyncClient, deps: Deps) -> None:
    key = await tenant_key(deps)
    hook_id = (await create(api, key))["webhook"]["id"]
    reader = (
        await api.post("/api/v1/apps", json={"name": "r", "scopes": ["read:webhook"]}, headers=key)
    ).json()["api_key"]
    as_reader = {"X-API-Key": reader}
    assert (await api.get(f"{WEBHOOKS_PATH}/{hook_id}", headers=as_reader)).status_code == 200
    for method, url in (
        ("POST", WEBHOOKS_PATH),
        ("PATCH", f"{WEBHOOKS_PATH}/{hook_id}"),
        ("POST", f"{WEBHOOKS_PATH}/{hook_id}/rotate-secret"),
        ("POST", f"{WEBHOOKS_PATH}/{hook_id}/test"),
        ("DELETE", f"{WEBHOOKS_PATH}/{hook_id}"),
    ):
        body = HOOK if method == "POST" and url == WEBHOOKS_PATH else {"description": "x"}
        answer = await api.request(method, url, json=body, headers=as_reader)
        problem(answer, 403, "SCOPE_MISSING")
    problem(await api.get(WEBHOOKS_PATH), 401, "CREDENTIALS_MISSING")


# --- what can be subscribed, and the OpenAPI document ---------------------------------


async def test_event_types_are_listed_publicly_with_the_schema_of_each_payload(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.get("/api/v1/event-types")
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [i["type"] for i in items] == list(EVENT_TYPES)
    for item in items:
        assert item["description"]
        jsonschema.Draft202012Validator.check_schema(item["schema"])
        assert {"id", "type", "timestamp", "data"} <= set(item["schema"]["required"])


def stored_message(**fields: Any) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "tenant_id": "tn_1",
        "channel": "sms-main",
        "channel_id": "ch_01",
        "direction": "outbound",
        "context": {"order": "A-17"},
        "tags": ["otp"],
        **fields,
    }


@pytest.mark.parametrize(
    ("message", "entry"),
    [
        (stored_message(), {"type": "message.queued", "status": "queued"}),
        (
            stored_message(provider_message_id="SM1"),
            {"type": "message.delivered", "status": "delivered", "attempt": 1},
        ),
        (
            stored_message(),
            {
                "type": "message.failed",
                "status": "failed",
                "attempt": 2,
                "error": {
                    "code": "SMS_HTTP_400",
                    "reason": "bad number",
                    "permanent": True,
                    "provider_status": "400",
                },
            },
        ),
        (
            stored_message(),
            {
                "type": "message.retrying",
                "status": "queued",
                "attempt": 1,
                "next_attempt_at": "2026-01-01T00:00:05.000Z",
                "error": {"code": "SMS_TIMEOUT", "reason": "timed out", "permanent": False},
            },
        ),
        (
            stored_message(
                direction="inbound",
                sender={"type": "phone", "address": "+4791234567"},
                receiver={"type": "phone", "address": "+4790000000"},
                content={"type": "text", "text": "STOP"},
            ),
            {"type": "message.received", "status": "received"},
        ),
    ],
)
async def test_the_schemas_describe_the_payloads_the_platform_publishes(
    api: httpx.AsyncClient, message: dict[str, Any], entry: dict[str, Any]
) -> None:
    schemas = {
        i["type"]: i["schema"] for i in (await api.get("/api/v1/event-types")).json()["items"]
    }
    published = event_payload(
        message, {"id": "evt_01_1", "at": "2026-01-01T00:00:00.000Z", **entry}
    )
    jsonschema.validate(payload(published), schemas[entry["type"]])
    other = "message.read" if entry["type"] != "message.read" else "message.sent"
    with pytest.raises(jsonschema.ValidationError):  # each schema fixes its type
        jsonschema.validate({**payload(published), "type": other}, schemas[entry["type"]])


def test_every_event_type_is_an_openapi_webhook_with_its_payload_schema() -> None:
    app = FastAPI()
    document_webhooks(app)
    spec = app.openapi()
    validate(spec)
    assert list(spec["webhooks"]) == list(EVENT_TYPES)
    for event_type, item in spec["webhooks"].items():
        operation = item["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert model["properties"]["type"]["const"] == event_type
        assert {p["name"] for p in operation["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        assert {"200", "410", "429", "4XX", "5XX"} <= set(operation["responses"])


async def test_the_served_openapi_document_has_the_webhooks(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/openapi.json")).json()
    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    validate(spec)
