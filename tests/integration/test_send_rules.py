"""What a message must satisfy on its channel, and where opt-outs come from: owned
senders, opt-out lists, the WhatsApp window, SMS segments, e-mail subjects, hard
bounces and one-click unsubscribes — through the API, with an SMTP peer (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from shared.config import Settings
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.integration.test_smtp_sender import Recorder
from tests.support.pump import pump

BOB = {"type": "email", "address": "bob@example.com"}
NOREPLY = {"type": "email", "address": "noreply@acme.example"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(OCM_DATA_DIR=tmp_path, OCM_PUBLIC_BASE_URL="https://ocm.example.com")


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


@pytest.fixture
async def key(deps: Deps) -> str:
    return (await signup.create_tenant(deps, "acme")).api_key


async def call(
    api: httpx.AsyncClient, key: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    return await api.request(method, path, json=body, headers={"X-API-Key": key})


async def email_channel(api: httpx.AsyncClient, key: str, port: int) -> None:
    created = await call(
        api,
        key,
        "POST",
        "/api/v1/channels",
        {
            "name": "email",
            "type": "email",
            "settings": {"host": "127.0.0.1", "port": port, "security": "none"},
            "default_sender": NOREPLY,
        },
    )
    assert created.status_code == 201, created.text


def mail(**extra: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "receiver": BOB,
        "subject": "Hello",
        "content": {"type": "text", "text": "hi"},
        **extra,
    }


async def test_a_sender_must_be_the_default_or_an_active_terminal(api, smtp, key) -> None:
    await email_channel(api, key, smtp[1])
    other = {"type": "email", "address": "billing@acme.example"}
    refused = await call(api, key, "POST", "/api/v1/messages", mail(sender=other))
    assert refused.status_code == 422
    assert refused.json()["code"] == "SENDER_NOT_ALLOWED"
    domain = await call(
        api,
        key,
        "POST",
        "/api/v1/terminals",
        {"channel": "email", "type": "email", "address": "@acme.example"},
    )
    assert domain.status_code == 201, domain.text
    assert (await call(api, key, "POST", "/api/v1/messages", mail(sender=other))).status_code == 202
    disabled = await call(
        api, key, "PATCH", f"/api/v1/terminals/{domain.json()['id']}", {"status": "disabled"}
    )
    assert disabled.status_code == 200, disabled.text
    again = await call(api, key, "POST", "/api/v1/messages", mail(sender=other))
    assert again.json()["code"] == "SENDER_NOT_ALLOWED"
    default = await call(api, key, "POST", "/api/v1/messages", mail(sender=NOREPLY))
    assert default.status_code == 202


async def test_an_email_needs_a_subject(api, smtp, key) -> None:
    await email_channel(api, key, smtp[1])
    refused = await call(api, key, "POST", "/api/v1/messages", mail(subject=None))
    assert refused.status_code == 422
    assert refused.json()["code"] == "SUBJECT_REQUIRED"


async def test_a_hard_bounce_opts_the_receiver_out_of_email(api, deps, smtp, key) -> None:
    recorder, port = smtp
    recorder.answers["bob@example.com"] = "550 5.1.1 No such user"
    await email_channel(api, key, port)
    accepted = await call(api, key, "POST", "/api/v1/messages", mail())
    await pump(deps)
    failed = (await call(api, key, "GET", f"/api/v1/messages/{accepted.json()['id']}")).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "SMTP_550"
    listed = await call(api, key, "GET", "/api/v1/opt-outs/email/bob@example.com")
    assert listed.status_code == 200 and listed.json()["reason"] == "bounce"
    refused = await call(api, key, "POST", "/api/v1/messages", mail())
    assert refused.status_code == 422
    assert refused.json()["code"] == "RECEIVER_OPTED_OUT"


async def test_a_transient_refusal_opts_nobody_out(api, deps, smtp, key) -> None:
    recorder, port = smtp
    recorder.answers["bob@example.com"] = "552 5.2.2 Mailbox full"
    await email_channel(api, key, port)
    await call(api, key, "POST", "/api/v1/messages", mail())
    await pump(deps)
    absent = await call(api, key, "GET", "/api/v1/opt-outs/email/bob@example.com")
    assert absent.status_code == 404


async def test_one_click_unsubscribe_opts_the_receiver_out(api, deps, smtp, key) -> None:
    recorder, port = smtp
    await email_channel(api, key, port)
    await call(api, key, "POST", "/api/v1/messages", mail())
    await pump(deps)
    [received] = recorder.received
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = received["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://ocm.example.com/api/v1/unsubscribe/")
    path = link.removeprefix("https://ocm.example.com")
    page = await api.get(path)
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert (
        await call(api, key, "GET", "/api/v1/opt-outs/email/bob@example.com")
    ).status_code == 404
    clicked = await api.post(path, content=b"List-Unsubscribe=One-Click")
    assert clicked.status_code == 200
    listed = await call(api, key, "GET", "/api/v1/opt-outs/email/bob@example.com")
    assert listed.json()["reason"] == "unsubscribe"
    forged = await api.post(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert forged.status_code == 404
    assert forged.json()["code"] == "UNSUBSCRIBE_LINK_INVALID"


async def test_sms_longer_than_the_channels_segments_is_refused(api, deps, key) -> None:
    created = await call(
        api,
        key,
        "POST",
        "/api/v1/channels",
        {
            "name": "sms",
            "type": "sms",
            "provider": "twilio",
            "settings": {"base_url": "http://127.0.0.1:9"},
            "default_sender": {"type": "phone", "address": "+15005550006"},
            "policy": {"max_segments": 2},
        },
    )
    assert created.status_code == 201, created.text
    body = {"channel": "sms", "receiver": {"type": "phone", "address": "+4791234567"}}
    ok = await call(
        api,
        key,
        "POST",
        "/api/v1/messages",
        {**body, "content": {"type": "text", "text": "a" * 306}},
    )
    assert ok.status_code == 202, ok.text
    assert ok.json()["segments"] == 2
    long = await call(
        api,
        key,
        "POST",
        "/api/v1/messages",
        {**body, "content": {"type": "text", "text": "ł" * 135}},
    )
    assert long.status_code == 422
    assert long.json()["code"] == "CONTENT_TOO_LONG"


async def test_whatsapp_free_form_needs_the_receivers_recent_message(api, deps, key) -> None:
    from tests.peers.meta import MetaPeer

    meta = MetaPeer()
    with meta.running():
        created = await call(
            api,
            key,
            "POST",
            "/api/v1/channels",
            {
                "name": "wa",
                "type": "whatsapp",
                "settings": {"base_url": meta.url, "phone_number_id": meta.phone_number_id},
                "default_sender": {"type": "phone", "address": "+" + meta.display_phone_number},
            },
        )
        assert created.status_code == 201, created.text
        channel = created.json()
        put = await call(
            api,
            key,
            "PUT",
            "/api/v1/channels/wa/credentials",
            {
                "access_token": meta.access_token,
                "app_secret": meta.app_secret,
                "verify_token": meta.verify_token,
            },
        )
        assert put.status_code == 204
        body = {
            "channel": "wa",
            "receiver": {"type": "phone", "address": "+4798765432"},
            "content": {"type": "text", "text": "hi"},
        }
        refused = await call(api, key, "POST", "/api/v1/messages", body)
        assert refused.status_code == 422
        assert refused.json()["code"] == "WHATSAPP_OUTSIDE_WINDOW"
        template = {
            **body,
            "content": {"type": "template", "template": "hello_world", "language": "en_US"},
        }
        assert (await call(api, key, "POST", "/api/v1/messages", template)).status_code == 202
        raw, headers = meta.signed(
            meta.inbound({"type": "text", "text": {"body": "hello"}}, sender="4798765432")
        )
        answer = await api.post(
            f"/api/v1/callbacks/meta/{channel['id']}", content=raw, headers=headers
        )
        assert answer.status_code == 200
        await pump(deps)
        assert (await call(api, key, "POST", "/api/v1/messages", body)).status_code == 202


async def test_a_web_push_receiver_must_be_a_subscription(api, key) -> None:
    created = await call(
        api, key, "POST", "/api/v1/channels", {"name": "web", "type": "push", "provider": "webpush"}
    )
    assert created.status_code == 201, created.text
    refused = await call(
        api,
        key,
        "POST",
        "/api/v1/messages",
        {
            "channel": "web",
            "receiver": {"type": "device", "address": '{"endpoint": "https://push.example"}'},
            "content": {"type": "push", "title": "Hi"},
        },
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "receiver.address"


async def test_a_template_is_rendered_for_the_channel_when_the_message_is_accepted(
    api, smtp, key
) -> None:
    await email_channel(api, key, smtp[1])
    created = await call(
        api,
        key,
        "POST",
        "/api/v1/templates",
        {
            "name": "welcome",
            "variables": [{"name": "name"}, {"name": "plan", "required": False}],
            "variants": {
                "email": {
                    "subject": "Welcome, {{ name }}",
                    "html": "<p>Hello {{ name }}</p>",
                    "text": "Hello {{ name }}",
                }
            },
        },
    )
    assert created.status_code == 201, created.text
    body = {"channel": "email", "receiver": BOB}
    content = {"type": "template", "template": "welcome", "data": {"name": "<Ann>"}}
    accepted = await call(api, key, "POST", "/api/v1/messages", {**body, "content": content})
    assert accepted.status_code == 202, accepted.text
    stored = accepted.json()
    assert stored["subject"] == "Welcome, <Ann>"
    assert stored["content"]["html"] == "<p>Hello &lt;Ann&gt;</p>"
    assert stored["template"]["name"] == "welcome"
    missing = {"type": "template", "template": "welcome", "data": {}}
    refused = await call(api, key, "POST", "/api/v1/messages", {**body, "content": missing})
    assert refused.status_code == 422
    assert refused.json()["code"] == "TEMPLATE_VARIABLE_MISSING"
    unknown = {"type": "template", "template": "nope", "data": {}}
    refused = await call(api, key, "POST", "/api/v1/messages", {**body, "content": unknown})
    assert refused.status_code == 422
    assert refused.json()["code"] == "TEMPLATE_NOT_FOUND"


async def test_instances_racing_to_make_the_unsubscribe_key_agree_on_one(deps) -> None:
    from shared.services.receivers import unsubscribe

    made = await unsubscribe._make_key(deps)
    lost = await unsubscribe._make_key(deps)  # another instance, a moment later: it lost
    assert lost["secret_name"] == made["secret_name"]
    doc = {"tenant_id": "tn_x", "id": "msg_x", "receiver": BOB}
    signed = (await unsubscribe.headers_for(deps, doc))["List-Unsubscribe"]
    deps.lookups.clear()  # as an instance that never cached the key sees it
    assert (await unsubscribe.headers_for(deps, doc))["List-Unsubscribe"] == signed
