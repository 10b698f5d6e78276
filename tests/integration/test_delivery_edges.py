"""The edges of delivery: failover chains, 429s that pause (or hold one message),
Retry-After values no calendar holds, WhatsApp ids that are not E.164 numbers,
STOPs that reach Twilio instead of OCM, receipts naming other channels' messages,
and signed callbacks that are malformed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.adapters.providers.http import MAX_RETRY_AFTER, retry_after
from shared.adapters.providers.meta_errors import graph_error
from shared.containers import CHANNELS, MESSAGES
from shared.domain.addresses import wa_id_to_e164
from shared.services.delivery import dead_letters, provider_events
from shared.services.deps import Deps
from shared.services.identity import authentication
from shared.services.onboarding import signup
from tests.peers.meta import MetaPeer
from tests.peers.twilio import Failure, TwilioPeer
from tests.support.pump import pump

PHONE = {"type": "phone", "address": "+4791234567"}
TEXT = {"type": "text", "text": "hello"}


@pytest.fixture
async def key(deps: Deps) -> dict[str, str]:
    return {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer().running() as peer:
        yield peer  # type: ignore[misc]


async def tenant_of(deps: Deps, key: dict[str, str]) -> str:
    return (await authentication.authenticate_api_key(deps, key["X-API-Key"])).tenant_id


async def post(api: httpx.AsyncClient, key: dict[str, str], path: str, body: Any) -> Any:
    answer = await api.post(path, json=body, headers=key)
    assert answer.status_code in (201, 202), answer.text
    return answer.json()


async def sandbox(api, key, name: str, **body: Any) -> dict[str, Any]:
    return dict(await post(api, key, "/api/v1/channels", {"name": name, "type": "sandbox", **body}))


async def twilio_channel(api, key, name: str, peer: TwilioPeer, **policy: Any) -> dict[str, Any]:
    created = await post(
        api,
        key,
        "/api/v1/channels",
        {
            "name": name,
            "type": "sms",
            "settings": {"base_url": peer.url},
            "default_sender": {"type": "phone", "address": "+15005550006"},
            "policy": {"rate_per_second": 0, **policy},
        },
    )
    put = await api.put(f"/api/v1/channels/{name}/credentials", json=peer.credentials, headers=key)
    assert put.status_code == 204
    return dict(created)


async def message(api, key, message_id: str) -> dict[str, Any]:
    return dict((await api.get(f"/api/v1/messages/{message_id}", headers=key)).json())


async def settle(api, deps, key, message_id: str, done: set[str]) -> dict[str, Any]:
    for _ in range(40):
        await pump(deps)
        current = await message(api, key, message_id)
        if current["status"] in done:
            return current
        await asyncio.sleep(0.1)
    return current


# -- failover ------------------------------------------------------------------


async def test_failover_walks_the_whole_chain_of_backups(api, deps, key) -> None:
    await sandbox(api, key, "c")
    await sandbox(api, key, "b", settings={"send": "transient"})
    await sandbox(
        api,
        key,
        "a",
        settings={"send": "transient"},
        policy={"backups": ["b", "c"], "failover_after": 1},
    )
    sent = await post(
        api, key, "/api/v1/messages", {"channel": "a", "receiver": PHONE, "content": TEXT}
    )
    done = await settle(api, deps, key, sent["id"], {"delivered", "failed"})
    assert done["status"] == "delivered", done
    assert done["channel"] == "c"
    moves = [
        (e["failover"]["from"], e["failover"]["to"]) for e in done["events"] if e.get("failover")
    ]
    assert moves == [("a", "b"), ("b", "c")]


async def test_a_channel_paused_by_a_429_hands_its_messages_to_the_backup(api, deps, key) -> None:
    backup = await sandbox(api, key, "backup")
    primary = await sandbox(api, key, "primary", policy={"backups": ["backup"]})
    tenant_id = await tenant_of(deps, key)
    until = (deps.clock.now() + timedelta(minutes=5)).isoformat()
    await deps.store.patch(CHANNELS, tenant_id, primary["id"], {"throttled_until": until})
    sent = await post(
        api, key, "/api/v1/messages", {"channel": "primary", "receiver": PHONE, "content": TEXT}
    )
    done = await settle(api, deps, key, sent["id"], {"delivered"})
    assert done["channel"] == backup["name"]
    [moved] = [e["failover"] for e in done["events"] if e.get("failover")]
    assert moved["reason"] == "throttled"


# -- 429s ------------------------------------------------------------------------


def test_a_retry_after_no_calendar_holds_is_capped_or_ignored() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(answer("1000000000000")) == MAX_RETRY_AFTER
    assert retry_after(answer("Fri, 31 Dec 9999 23:59:59 GMT")) == MAX_RETRY_AFTER
    assert retry_after(answer("120")) == 120.0
    assert retry_after(answer("soon")) is None


async def test_a_huge_retry_after_holds_the_message_instead_of_crashing(
    api, deps, key, twilio
) -> None:
    await twilio_channel(api, key, "sms", twilio)
    twilio.fail_next.append(Failure(429, 20429, "Too many", {"Retry-After": "1000000000000"}))
    sent = await post(
        api, key, "/api/v1/messages", {"channel": "sms", "receiver": PHONE, "content": TEXT}
    )
    await pump(deps)
    held = await message(api, key, sent["id"])
    assert held["status"] == "queued" and held["attempts"] == 0
    assert held["throttles"] == 1


def test_a_whatsapp_pair_limit_holds_one_message_not_the_number() -> None:
    body = {"error": {"message": "(#131056) pair rate limit hit", "code": 131056}}
    error = graph_error(httpx.Response(400, json=body), token="t")
    assert error.kind == "throttled"
    assert error.details.get("per_receiver") == "true"
    throughput = {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}
    assert not graph_error(httpx.Response(400, json=throughput), token="t").details.get(
        "per_receiver"
    )


# -- opt-outs that reach the provider, not OCM ----------------------------------


async def test_a_stop_twilio_answers_for_opts_the_receiver_out(api, deps, key, twilio) -> None:
    await twilio_channel(api, key, "sms", twilio)
    twilio.fail_next.append(Failure(400, 21610, "Attempt to send to unsubscribed recipient"))
    sent = await post(
        api, key, "/api/v1/messages", {"channel": "sms", "receiver": PHONE, "content": TEXT}
    )
    await pump(deps)
    assert (await message(api, key, sent["id"]))["error"]["code"] == "TWILIO_21610"
    listed = await api.get("/api/v1/opt-outs/sms/+4791234567", headers=key)
    assert listed.status_code == 200 and listed.json()["reason"] == "unsubscribe"


# -- WhatsApp ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wa_id", "number"),
    [
        ("5215512345678", "+525512345678"),  # Mexico: the 1 dropped in 2019
        ("551187654321", "+5511987654321"),  # Brazil: an account from before the 9th digit
        ("5511987654321", "+5511987654321"),
        ("4798765432", "+4798765432"),
        ("5491112345678", "+5491112345678"),  # Argentina's 9 is part of the number
    ],
)
def test_whatsapp_ids_map_to_the_numbers_tenants_send_to(wa_id: str, number: str) -> None:
    assert wa_id_to_e164(wa_id) == number


async def test_a_mexican_stop_on_whatsapp_opts_out_the_number_sent_to(api, deps, key) -> None:
    meta = MetaPeer()
    with meta.running():
        channel = await post(
            api,
            key,
            "/api/v1/channels",
            {
                "name": "wa",
                "type": "whatsapp",
                "settings": {"base_url": meta.url, "phone_number_id": meta.phone_number_id},
                "default_sender": {"type": "phone", "address": "+" + meta.display_phone_number},
            },
        )
        credentials = {
            "access_token": meta.access_token,
            "app_secret": meta.app_secret,
            "verify_token": meta.verify_token,
        }
        await api.put("/api/v1/channels/wa/credentials", json=credentials, headers=key)
        body = {"channel": "wa", "receiver": {"type": "phone", "address": "+525512345678"}}
        hello, headers = meta.signed(
            meta.inbound({"type": "text", "text": {"body": "hola"}}, sender="5215512345678")
        )
        path = f"/api/v1/callbacks/meta/{channel['id']}"
        assert (await api.post(path, content=hello, headers=headers)).status_code == 200
        await pump(deps)
        window = await api.post("/api/v1/messages", json={**body, "content": TEXT}, headers=key)
        assert window.status_code == 202, window.text
        stop, headers = meta.signed(
            meta.inbound({"type": "text", "text": {"body": "STOP"}}, sender="5215512345678")
        )
        assert (await api.post(path, content=stop, headers=headers)).status_code == 200
        await pump(deps)
        inbound = (await api.get("/api/v1/messages?direction=inbound", headers=key)).json()
        assert [m["content"]["text"] for m in inbound["items"]] == ["STOP", "hola"]
        refused = await api.post("/api/v1/messages", json={**body, "content": TEXT}, headers=key)
        assert refused.json()["code"] == "RECEIVER_OPTED_OUT"


# -- receipts and callbacks ----------------------------------------------------------


async def test_a_receipt_naming_another_channels_message_changes_nothing(api, deps, key) -> None:
    await sandbox(api, key, "one")
    other = await sandbox(api, key, "two")
    sent = await post(
        api,
        key,
        "/api/v1/messages",
        {
            "channel": "one",
            "receiver": PHONE,
            "content": TEXT,
            "options": {"sandbox": {"delivery": "none"}},
        },
    )
    await pump(deps)
    tenant_id = await tenant_of(deps, key)
    result = await provider_events.handle(
        deps,
        orjson.dumps(
            {
                "kind": "receipt",
                "tenant_id": tenant_id,
                "channel_id": other["id"],
                "message_id": sent["id"],
                "event_id": "forged-1",
                "status": "failed",
            }
        ),
    )
    assert result == "ignored"
    assert (await message(api, key, sent["id"]))["status"] == "sent"


async def test_a_dead_lettered_fallback_job_leaves_the_primary_as_it_is(api, deps, key) -> None:
    await sandbox(api, key, "primary")
    sent = await post(
        api,
        key,
        "/api/v1/messages",
        {
            "channel": "primary",
            "receiver": PHONE,
            "content": TEXT,
            "options": {"fallback_after": 60, "sandbox": {"delivery": "none"}},
            "fallback": {"channel": "primary", "receiver": PHONE, "content": TEXT},
        },
    )
    await pump(deps)
    tenant_id = await tenant_of(deps, key)
    doc = await deps.store.read(MESSAGES, tenant_id, sent["id"])
    assert doc is not None and ":fb:" in doc["dispatch"]["job"]

    job = orjson.dumps(
        {"tenant_id": tenant_id, "message_id": sent["id"], "job": doc["dispatch"]["job"]}
    )
    assert await dead_letters.fail_dead_lettered(deps, job, "MaxDeliveryCountExceeded") == "settled"
    assert (await message(api, key, sent["id"]))["status"] == "sent"
