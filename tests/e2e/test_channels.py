"""Every channel type in one run, as a tenant uses them: `ocm serve` sends to peers on
loopback that follow each provider's published API, receipts and inbound messages
come back through signed callbacks, an inbound STOP opts a receiver out, a WhatsApp
message falls back to SMS when no receipt comes in time, and a failing SMS provider
hands its messages to a backup channel."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import Client, Server, free_port, server_env
from tests.peers.apprise_peers import WebhookPeer
from tests.peers.fcm import FcmPeer
from tests.peers.meta import MetaPeer
from tests.peers.sendgrid import SendGridPeer
from tests.peers.telegram import TelegramPeer, text_update, webhook_headers
from tests.peers.twilio import Failure, TwilioPeer
from tests.peers.webpush import Browser, Vapid, WebPushPeer

PHONE = "+4791234567"
WA_USER = "4798765432"
TELEGRAM_SECRET = "hook-secret-1"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class World:
    server: Server
    client: Client
    twilio: TwilioPeer
    twilio_down: TwilioPeer
    meta: MetaPeer
    telegram: TelegramPeer
    sendgrid: SendGridPeer
    fcm: FcmPeer
    push: WebPushPeer
    vapid: Vapid
    hook: WebhookPeer
    inbox: Inbox
    channels: dict[str, dict[str, Any]]

    def callback(self, name: str) -> str:
        return str(self.channels[name]["callback_url"])


def wait(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ExitStack() as stack:
        peers = {
            "twilio": TwilioPeer(),
            "twilio_down": TwilioPeer(),
            "meta": MetaPeer(),
            "telegram": TelegramPeer(),
            "sendgrid": SendGridPeer(),
            "fcm": FcmPeer(),
            "push": WebPushPeer(),
            "hook": WebhookPeer(kind="json"),
        }
        for peer in peers.values():
            stack.enter_context(peer.running())
        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        stack.callback(smtp.stop)
        data_dir: Path = tmp_path_factory.mktemp("channels")
        port = free_port()
        env = server_env(data_dir, OCM_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
        server = Server(data_dir=data_dir, port=port, env=env)
        server.start()
        stack.callback(lambda: server.process and server.process.poll() is None and server.stop())
        client = server.tenant("omni")
        vapid = Vapid.generate()
        channels = make_channels(client, peers, smtp.port, vapid)
        yield World(server, client, **peers, vapid=vapid, inbox=inbox, channels=channels)  # type: ignore[arg-type]


def create(client: Client, body: dict[str, Any], credentials: dict[str, str] | None) -> Any:
    created = client.post("/api/v1/channels", json=body)
    assert created.status_code == 201, created.text
    if credentials:
        put = client.request(
            "PUT", f"/api/v1/channels/{body['name']}/credentials", json=credentials
        )
        assert put.status_code == 204, put.text
    return created.json()


def make_channels(
    client: Client, p: dict[str, Any], smtp_port: int, vapid: Vapid
) -> dict[str, Any]:
    unpaced = {"rate_per_second": 0}
    twilio, down = p["twilio"], p["twilio_down"]
    channels = {}

    def sms(name: str, peer: TwilioPeer, sender: str, **policy: Any) -> Any:
        body = {
            "name": name,
            "type": "sms",
            "provider": "twilio",
            "settings": {"base_url": peer.url},
            "default_sender": {"type": "phone", "address": sender},
            "policy": {**unpaced, **policy},
        }
        return create(client, body, peer.credentials)

    channels["sms-backup"] = sms("sms-backup", twilio, "+15005550006")
    channels["sms"] = sms("sms", twilio, "+15005550006")
    channels["sms-flaky"] = sms(
        "sms-flaky", down, "+15005550007", backups=["sms-backup"], failover_after=2
    )
    meta = p["meta"]
    channels["whatsapp"] = create(
        client,
        {
            "name": "whatsapp",
            "type": "whatsapp",
            "provider": "meta",
            "settings": {"base_url": meta.url, "phone_number_id": meta.phone_number_id},
            "default_sender": {"type": "phone", "address": "+" + meta.display_phone_number},
            "policy": unpaced,
        },
        {
            "access_token": meta.access_token,
            "app_secret": meta.app_secret,
            "verify_token": meta.verify_token,
        },
    )
    telegram = p["telegram"]
    channels["telegram"] = create(
        client,
        {
            "name": "telegram",
            "type": "telegram",
            "settings": {"base_url": telegram.url},
            "default_sender": {"type": "telegram", "address": "@omni_bot"},
            "policy": unpaced,
        },
        {"bot_token": telegram.token, "webhook_secret": TELEGRAM_SECRET},
    )
    sendgrid = p["sendgrid"]
    channels["email-sendgrid"] = create(
        client,
        {
            "name": "email-sendgrid",
            "type": "email",
            "provider": "sendgrid",
            "settings": {"base_url": sendgrid.url},
            "default_sender": {"type": "email", "address": "noreply@omni.example"},
        },
        {"api_key": sendgrid.api_key, "event_webhook_public_key": sendgrid.event_public_key},
    )
    channels["email"] = create(
        client,
        {
            "name": "email",
            "type": "email",
            "settings": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
            "default_sender": {"type": "email", "address": "noreply@omni.example"},
        },
        None,
    )
    fcm = p["fcm"]
    channels["push"] = create(
        client,
        {
            "name": "push",
            "type": "push",
            "settings": {"base_url": fcm.url, "token_uri": fcm.token_uri},
        },
        {"service_account_json": fcm.service_account()},
    )
    channels["webpush"] = create(
        client,
        {
            "name": "webpush",
            "type": "push",
            "provider": "webpush",
        },
        vapid.credentials(),
    )
    channels["chat"] = create(
        client,
        {
            "name": "chat",
            "type": "chat",
            "default_sender": {"type": "topic", "address": "ops"},
        },
        {"url": p["hook"].address("ops-room")},
    )
    return channels


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


def test_one_tenant_sends_over_every_type_and_receipts_come_back_signed(world: World) -> None:
    c = world.client
    # WhatsApp takes free-form text only within 24 h of the user's last message.
    body, headers = world.meta.signed(
        world.meta.inbound({"type": "text", "text": {"body": "hi there"}}, sender=WA_USER)
    )
    assert post(world.callback("whatsapp"), body, headers).status_code == 200
    browser = Browser.subscribe(world.push, world.vapid)
    sends = {
        "sms": {"receiver": {"type": "phone", "address": PHONE}},
        "whatsapp": {"receiver": {"type": "phone", "address": "+" + WA_USER}},
        "telegram": {"receiver": {"type": "telegram", "address": "4242"}},
        "email-sendgrid": {
            "receiver": {"type": "email", "address": "bob@example.com"},
            "subject": "Hello",
        },
        "email": {"receiver": {"type": "email", "address": "bob@example.com"}, "subject": "Hi"},
        "push": {
            "receiver": {"type": "device", "address": "device-token-1"},
            "content": {"type": "push", "title": "Hello", "body": "from OCM"},
        },
        "webpush": {
            "receiver": {"type": "device", "address": browser.subscription},
            "content": {"type": "push", "title": "Hello", "body": "from OCM"},
        },
        "chat": {"receiver": {"type": "topic", "address": "ops"}},
    }
    time.sleep(0.5)  # the inbound WhatsApp message is applied (its window opens)
    ids = {}
    for name, extra in sends.items():
        message = {"channel": name, "content": {"type": "text", "text": "hello"}, **extra}
        accepted = c.post("/api/v1/messages", json=message)
        assert accepted.status_code == 202, (name, accepted.text)
        ids[name] = accepted.json()["id"]
    done = {
        name: c.wait_for(i, lambda m: m["status"] in ("sent", "delivered", "failed"))
        for name, i in ids.items()
    }
    assert {n: m["status"] for n, m in done.items()} == dict.fromkeys(sends, "sent")

    # What each provider received.
    assert world.twilio.messages[-1]["To"] == [PHONE]
    assert world.meta.sent[-1]["to"] in (WA_USER, "+" + WA_USER)
    method, params = world.telegram.sent[-1]
    assert (method, params["text"]) == ("sendmessage", "hello")
    assert world.sendgrid.sent[-1]["body"]["subject"] == "Hello"
    assert world.inbox.messages[-1]["Subject"] == "Hi"
    assert world.inbox.messages[-1]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert world.fcm.sent[-1]["notification"]["title"] == "Hello"
    assert world.hook.received[-1]["message"] == "hello"
    payload = browser.decrypt(world.push.messages[-1].body)
    assert payload["title"] == "Hello" and payload["body"] == "from OCM"

    # Receipts, signed as each provider signs them.
    sms = done["sms"]
    signed = world.twilio.status_callback(
        world.callback("sms"), sms["provider_message_id"], "delivered"
    )
    assert post(signed.url, signed.body, signed.headers).status_code == 200
    body, headers = world.meta.signed(
        world.meta.status(done["whatsapp"]["provider_message_id"], "read", to=WA_USER)
    )
    assert post(world.callback("whatsapp"), body, headers).status_code == 200
    body, headers = world.sendgrid.event_callback(
        [world.sendgrid.event(world.sendgrid.sent[-1], "delivered")]
    )
    assert post(world.callback("email-sendgrid"), body, headers).status_code == 200
    assert c.wait_for(ids["sms"], lambda m: m["status"] == "delivered")
    assert c.wait_for(ids["whatsapp"], lambda m: m["status"] == "read")
    assert c.wait_for(ids["email-sendgrid"], lambda m: m["status"] == "delivered")

    # A forged receipt is refused and changes nothing.
    forged = world.twilio.status_callback(
        world.callback("sms"), sms["provider_message_id"], "failed"
    )
    forged.headers["X-Twilio-Signature"] = base64.b64encode(b"0" * 20).decode()
    assert post(forged.url, forged.body, forged.headers).status_code == 401
    assert c.get(f"/api/v1/messages/{ids['sms']}").json()["status"] == "delivered"

    # Inbound Telegram message, verified by its secret token.
    update = text_update("ping", chat_id=777)
    answer = post(
        world.callback("telegram"),
        json.dumps(update).encode(),
        {"Content-Type": "application/json", **webhook_headers(TELEGRAM_SECRET)},
    )
    assert answer.status_code == 200
    inbound = wait(
        lambda: [
            m
            for m in c.get("/api/v1/messages", params={"direction": "inbound"}).json()["items"]
            if m["channel"] == "telegram"
        ]
    )
    assert inbound[0]["content"]["text"] == "ping"


def test_an_inbound_stop_blocks_the_next_sms(world: World) -> None:
    c = world.client
    receiver = "+4791112233"
    stop = world.twilio.incoming_message(
        world.callback("sms"), sender=receiver, to="+15005550006", body="Stop"
    )
    answer = post(stop.url, stop.body, stop.headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    wait(lambda: c.get(f"/api/v1/opt-outs/sms/{receiver}").status_code == 200)
    refused = c.post(
        "/api/v1/messages",
        json={
            "channel": "sms",
            "receiver": {"type": "phone", "address": receiver},
            "content": {"type": "text", "text": "still there?"},
        },
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "RECEIVER_OPTED_OUT"
    start = world.twilio.incoming_message(
        world.callback("sms"), sender=receiver, to="+15005550006", body="START"
    )
    assert post(start.url, start.body, start.headers).status_code == 200
    wait(lambda: c.get(f"/api/v1/opt-outs/sms/{receiver}").status_code == 404)


def test_whatsapp_falls_back_to_sms_when_no_receipt_comes_in_time(world: World) -> None:
    c = world.client
    accepted = c.post(
        "/api/v1/messages",
        json={
            "channel": "whatsapp",
            "receiver": {"type": "phone", "address": "+" + WA_USER},
            "content": {"type": "text", "text": "Your code is 1234"},
            "options": {"fallback_after": 1},
            "fallback": {
                "channel": "sms",
                "receiver": {"type": "phone", "address": "+" + WA_USER},
                "content": {"type": "text", "text": "Your code is 1234"},
            },
        },
    )
    assert accepted.status_code == 202, accepted.text
    primary = c.wait_for(accepted.json()["id"], lambda m: m.get("fallback_id"), timeout=15)
    assert primary["status"] == "sent"
    [event] = [e for e in primary["events"] if e["type"] == "message.fallback"]
    child = c.wait_for(event["fallback_id"], lambda m: m["status"] == "sent")
    assert child["channel"] == "sms"
    assert world.twilio.messages[-1]["Body"] == ["Your code is 1234"]


def test_a_failing_sms_provider_hands_its_messages_to_the_backup(world: World) -> None:
    c = world.client
    world.twilio_down.fail_next.extend(Failure(503, 20503, "Service unavailable") for _ in range(5))
    accepted = c.post(
        "/api/v1/messages",
        json={
            "channel": "sms-flaky",
            "receiver": {"type": "phone", "address": PHONE},
            "content": {"type": "text", "text": "via the backup"},
        },
    )
    assert accepted.status_code == 202, accepted.text
    done = c.wait_for(accepted.json()["id"], lambda m: m["status"] in ("sent", "failed"))
    assert done["status"] == "sent", done
    assert done["channel"] == "sms-backup"
    [moved] = [e["failover"] for e in done["events"] if e.get("failover")]
    assert moved == {"from": "sms-flaky", "to": "sms-backup", "reason": moved["reason"]}
    assert world.twilio.messages[-1]["Body"] == ["via the backup"]
