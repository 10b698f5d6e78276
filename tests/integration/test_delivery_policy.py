"""Delivery policy through the API: fallback on outcome, failover to backup channels,
pacing and pauses — with the sandbox provider, driven in process (tests/support/pump)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.containers import CHANNELS, MESSAGES
from shared.domain.jobs import DispatchJob
from shared.services.delivery import dispatch
from shared.services.deps import Deps
from shared.services.identity import authentication
from shared.services.onboarding import signup
from tests.support.pump import pump

PHONE = {"type": "phone", "address": "+4791234567"}
TEXT = {"type": "text", "text": "hello"}


@pytest.fixture
async def key(deps: Deps) -> str:
    return (await signup.create_tenant(deps, "acme")).api_key


async def channel(api: httpx.AsyncClient, key: str, name: str, **body: Any) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/channels",
        json={"name": name, "type": "sandbox", **body},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def send(api: httpx.AsyncClient, key: str, **message: Any) -> httpx.Response:
    body = {"channel": "primary", "receiver": PHONE, "content": TEXT, **message}
    return await api.post("/api/v1/messages", json=body, headers={"X-API-Key": key})


async def read(api: httpx.AsyncClient, key: str, message_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/messages/{message_id}", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def types(message: dict[str, Any]) -> list[str]:
    return [e["type"] for e in message["events"]]


# -- fallback ------------------------------------------------------------------


async def test_a_permanent_failure_sends_the_fallback(api, deps, key) -> None:
    await channel(api, key, "primary")
    await channel(api, key, "backup-sms")
    accepted = await send(
        api,
        key,
        options={"sandbox": {"send": "fail"}},
        context={"order": "A-17"},
        fallback={"channel": "backup-sms", "receiver": PHONE, "content": TEXT},
    )
    assert accepted.status_code == 202, accepted.text
    await pump(deps)
    primary = await read(api, key, accepted.json()["id"])
    assert primary["status"] == "failed"
    [event] = [e for e in primary["events"] if e["type"] == "message.fallback"]
    child = await read(api, key, event["fallback_id"])
    assert child["status"] == "delivered"
    assert child["channel"] == "backup-sms"
    assert child["parent_id"] == primary["id"]
    assert child["context"] == {"order": "A-17"}


async def test_no_receipt_in_time_sends_the_fallback_and_a_receipt_in_time_does_not(
    api, deps, key
) -> None:
    await channel(api, key, "primary")
    await channel(api, key, "backup-sms")
    fallback = {"channel": "backup-sms", "receiver": PHONE, "content": TEXT}
    silent = await send(
        api,
        key,
        options={"fallback_after": 1, "sandbox": {"delivery": "none"}},
        fallback=fallback,
    )
    answered = await send(api, key, options={"fallback_after": 1}, fallback=fallback)
    await pump(deps)
    assert (await read(api, key, silent.json()["id"]))["status"] == "sent"
    await asyncio.sleep(1.2)
    await pump(deps)
    primary = await read(api, key, silent.json()["id"])
    assert primary["status"] == "sent"
    assert "message.fallback" in types(primary)
    assert (await read(api, key, primary["fallback_id"]))["status"] == "delivered"
    delivered = await read(api, key, answered.json()["id"])
    assert delivered["status"] == "delivered"
    assert "message.fallback" not in types(delivered)


async def test_the_fallback_job_twice_creates_one_fallback(api, deps, key) -> None:
    await channel(api, key, "primary")
    fallback = {"channel": "primary", "receiver": PHONE, "content": TEXT}
    accepted = await send(api, key, options={"sandbox": {"send": "fail"}}, fallback=fallback)
    await pump(deps)
    primary = await read(api, key, accepted.json()["id"])
    doc = await deps.store.read(MESSAGES, await _tenant(deps, key), primary["id"])
    assert doc is not None
    again = await dispatch.dispatch(
        deps, DispatchJob(doc["tenant_id"], doc["id"], f"{doc['id']}:fb:f")
    )
    assert again == "dropped"
    assert types(await read(api, key, primary["id"])).count("message.fallback") == 1


async def _tenant(deps: Deps, key: str) -> str:
    principal = await authentication.authenticate_api_key(deps, key)
    return principal.tenant_id


async def test_fallbacks_nest_three_deep_and_no_deeper(api, key) -> None:
    await channel(api, key, "primary")
    leaf: dict[str, Any] = {"channel": "primary", "receiver": PHONE, "content": TEXT}
    nested = leaf
    for _ in range(3):
        nested = {**leaf, "fallback": nested}
    assert (await send(api, key, fallback=nested["fallback"])).status_code == 202
    refused = await send(api, key, fallback=nested)
    assert refused.status_code == 422
    assert refused.json()["code"] == "VALIDATION_FAILED"


async def test_a_fallback_that_could_not_be_sent_refuses_the_message(api, key) -> None:
    await channel(api, key, "primary")
    refused = await send(
        api, key, fallback={"channel": "nowhere", "receiver": PHONE, "content": TEXT}
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "CHANNEL_NOT_FOUND"


# -- failover ------------------------------------------------------------------


async def test_a_channel_that_keeps_failing_hands_its_messages_to_the_backup(
    api, deps, key
) -> None:
    await channel(api, key, "backup")
    await channel(
        api,
        key,
        "primary",
        settings={"send": "transient"},
        policy={"backups": ["backup"], "failover_after": 2},
    )
    accepted = await send(api, key)
    for _ in range(10):
        await pump(deps)
        done = await read(api, key, accepted.json()["id"])
        if done["status"] == "delivered":
            break
        await asyncio.sleep(0.3)
    assert done["status"] == "delivered", done
    assert done["channel"] == "backup"
    [moved] = [e["failover"] for e in done["events"] if e.get("failover")]
    assert moved["from"] == "primary" and moved["to"] == "backup"
    assert done["attempts"] == 3


async def test_a_paused_channel_hands_its_messages_to_the_backup(api, deps, key) -> None:
    await channel(api, key, "backup")
    await channel(api, key, "primary", status="paused", policy={"backups": ["backup"]})
    accepted = await send(api, key)
    await pump(deps)
    done = await read(api, key, accepted.json()["id"])
    assert done["status"] == "delivered"
    assert done["channel"] == "backup"
    assert done["attempts"] == 1


async def test_backups_must_be_live_channels_of_the_same_type(api, key) -> None:
    await channel(api, key, "primary")
    response = await api.post(
        "/api/v1/channels",
        json={"name": "x", "type": "sandbox", "policy": {"backups": ["nowhere", "x"]}},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"policy.backups.0", "policy.backups.1"}


# -- pacing and pauses -----------------------------------------------------------


async def test_a_paced_channel_sends_no_faster_than_its_rate(api, deps, key) -> None:
    await channel(api, key, "primary", policy={"rate_per_second": 2})
    ids = [(await send(api, key)).json()["id"] for _ in range(6)]
    await pump(deps)
    statuses = [(await read(api, key, i))["status"] for i in ids]
    assert statuses.count("delivered") <= 4  # this second's 2, and maybe the next's
    assert statuses.count("queued") >= 2
    for _ in range(30):
        await asyncio.sleep(0.3)
        await pump(deps)
        docs = [await read(api, key, i) for i in ids]
        if all(d["status"] == "delivered" for d in docs):
            break
    assert all(d["status"] == "delivered" for d in docs)
    assert all(d["attempts"] == 1 for d in docs)  # waiting used no attempt


async def test_a_429_pauses_the_whole_channel_without_using_attempts(api, deps, key) -> None:
    created = await channel(api, key, "primary")
    throttled = await send(
        api, key, options={"sandbox": {"send": "throttle", "retry_after_ms": 1500, "fail_times": 1}}
    )
    await pump(deps)
    stored = await deps.store.read(CHANNELS, await _tenant(deps, key), created["id"])
    assert stored is not None and stored["throttled_until"]
    other = await send(api, key)
    await pump(deps)
    assert (await read(api, key, other.json()["id"]))["status"] == "queued"
    await asyncio.sleep(1.6)
    await pump(deps)
    for message_id in (throttled.json()["id"], other.json()["id"]):
        done = await read(api, key, message_id)
        assert done["status"] == "delivered"
        assert done["attempts"] == 1


async def test_an_expired_message_sends_its_fallback(api, deps, key) -> None:
    await channel(api, key, "primary", status="paused")
    await channel(api, key, "backup-sms")
    soon = (deps.clock.now() + timedelta(seconds=1)).isoformat()
    accepted = await send(
        api,
        key,
        options={"expires_at": soon},
        fallback={"channel": "backup-sms", "receiver": PHONE, "content": TEXT},
    )
    assert accepted.status_code == 202, accepted.text
    await pump(deps)  # the channel is paused: the message waits
    await asyncio.sleep(1.1)
    await _run_due(deps, key, accepted.json()["id"])
    await pump(deps)
    primary = await read(api, key, accepted.json()["id"])
    assert primary["status"] == "expired"
    assert (await read(api, key, primary["fallback_id"]))["status"] == "delivered"


async def _run_due(deps: Deps, key: str, message_id: str) -> None:
    """The paused message's next check, now (instead of OCM_PAUSED_RECHECK_SECONDS on)."""
    doc = await deps.store.read(MESSAGES, await _tenant(deps, key), message_id)
    assert doc is not None
    await dispatch.dispatch(deps, DispatchJob(doc["tenant_id"], doc["id"], doc["dispatch"]["job"]))


async def test_without_receipts_sent_counts_as_delivered(api, deps, key) -> None:
    """No fallback timer on a channel without receipts: its `sent` is final."""
    await channel(api, key, "backup-sms")
    # A receipt-less channel: Telegram.
    created = await api.post(
        "/api/v1/channels",
        json={
            "name": "tg",
            "type": "telegram",
            "settings": {"base_url": "http://127.0.0.1:9"},
            "default_sender": {"type": "telegram", "address": "@bot_name"},
        },
        headers={"X-API-Key": key},
    )
    assert created.status_code == 201, created.text
    accepted = await send(
        api,
        key,
        channel="tg",
        receiver={"type": "telegram", "address": "4242"},
        options={"fallback_after": 1},
        fallback={"channel": "backup-sms", "receiver": PHONE, "content": TEXT},
    )
    doc = await deps.store.read(MESSAGES, await _tenant(deps, key), accepted.json()["id"])
    assert doc is not None and doc.get("fallback") and "fallback_after" not in doc
