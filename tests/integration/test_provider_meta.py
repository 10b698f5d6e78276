"""The Meta WhatsApp Cloud API provider: the sender against a peer that follows the
Cloud API, webhook signatures and the handshake, parsing, and the whole path
through OCM's API (send, receipt, inbound, repeated and forged callbacks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from shared.adapters.providers.meta import PROVIDER, MetaSender
from shared.adapters.providers.meta_callbacks import MetaCallbacks, signature
from shared.adapters.providers.meta_errors import graph_error
from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.ports import CallbackRequest, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.meta import MetaPeer
from tests.support.pump import pump

CUSTOMER = "+4791234567"


@pytest.fixture
def peer() -> Iterator[MetaPeer]:
    with MetaPeer().running() as running:
        assert isinstance(running, MetaPeer)
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[MetaSender]:
    s = MetaSender(allow_private_egress=True, timeout_seconds=5)
    yield s
    await s.close()


def channel_of(peer: MetaPeer, **settings: Any) -> dict[str, Any]:
    return {
        "id": "ch_meta",
        "tenant_id": "ten_1",
        "settings": {
            "base_url": peer.url,
            "api_version": "v21.0",
            "phone_number_id": peer.phone_number_id,
            **settings,
        },
        "default_sender": {"type": "phone", "address": "+" + peer.display_phone_number},
    }


def request_for(peer: MetaPeer, content: dict[str, Any] | None = None, **kw: Any) -> SendRequest:
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "receiver": {"type": "phone", "address": kw.pop("to", CUSTOMER)},
        "sender": {"type": "phone", "address": "+" + peer.display_phone_number},
        "content": content or {"type": "text", "text": "Your order has shipped"},
    }
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel=kw.pop("channel", None) or channel_of(peer),
        credentials=kw.pop("credentials", {"access_token": peer.access_token}),
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def refused(sender: MetaSender, request: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await sender.send(request)
    return caught.value


# -- sending ---------------------------------------------------------------------------


async def test_a_text_is_posted_to_the_numbers_messages_endpoint_with_the_bearer_token(
    peer: MetaPeer, sender: MetaSender
) -> None:
    result = await sender.send(request_for(peer))
    [call] = peer.requests
    assert call.method == "POST"
    assert call.path == f"/v21.0/{peer.phone_number_id}/messages"
    assert call.headers["authorization"] == f"Bearer {peer.access_token}"
    assert call.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4791234567",
        "type": "text",
        "text": {"preview_url": False, "body": "Your order has shipped"},
    }
    assert result.provider_message_id == peer.sent[0]["id"]
    assert result.provider_message_id.startswith("wamid.")


@pytest.mark.parametrize(
    ("media_type", "kind"),
    [("image/jpeg", "image"), ("video/mp4", "video"), ("application/pdf", "document")],
)
async def test_media_goes_as_its_kind_with_link_and_caption(
    peer: MetaPeer, sender: MetaSender, media_type: str, kind: str
) -> None:
    url = "https://cdn.example.com/files/Order%2042.bin"
    content = {"type": "media", "url": url, "media_type": media_type, "caption": "Order 42"}
    await sender.send(request_for(peer, content))
    body = peer.requests[0].json()
    assert body["type"] == kind
    expected = {"link": url, "caption": "Order 42"}
    if kind == "document":
        expected["filename"] = "Order 42.bin"
    assert body[kind] == expected


async def test_audio_goes_without_caption_and_an_audio_caption_is_refused_before_sending(
    peer: MetaPeer, sender: MetaSender
) -> None:
    voice = {"type": "media", "url": "https://cdn.example.com/a.ogg", "media_type": "audio/ogg"}
    await sender.send(request_for(peer, voice))
    assert peer.requests[0].json()["audio"] == {"link": "https://cdn.example.com/a.ogg"}
    error = await refused(sender, request_for(peer, {**voice, "caption": "listen"}))
    assert (error.kind, error.code) == ("permanent", "WHATSAPP_INVALID_MESSAGE")
    assert len(peer.requests) == 1


async def test_template_parameters_become_the_bodys_text_parameters(
    peer: MetaPeer, sender: MetaSender
) -> None:
    content = {
        "type": "template",
        "template": "order_shipped",
        "language": "en_US",
        "data": {"parameters": ["Kerry", "42"]},
    }
    await sender.send(request_for(peer, content))
    body = peer.requests[0].json()
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_shipped",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Kerry"}, {"type": "text", "text": "42"}],
            }
        ],
    }


async def test_template_components_pass_through_as_metas_own_list(
    peer: MetaPeer, sender: MetaSender
) -> None:
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/a.png"}}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "42"}],
        },
    ]
    content = {
        "type": "template",
        "template": "order_shipped",
        "language": "pt_BR",
        "data": {"components": components},
    }
    await sender.send(request_for(peer, content))
    template = peer.requests[0].json()["template"]
    assert template == {
        "name": "order_shipped",
        "language": {"code": "pt_BR"},
        "components": components,
    }


@pytest.mark.parametrize(
    "content",
    [
        {"type": "template", "template": "t", "data": {"parameters": ["a"]}},
        {"type": "template", "template": "t", "language": "en", "data": {"name": "Kerry"}},
        {"type": "template", "template": "t", "language": "en", "data": {"parameters": [1]}},
        {
            "type": "template",
            "template": "t",
            "language": "en",
            "data": {"parameters": ["a"], "components": []},
        },
        {"type": "html", "html": "<p>hi</p>"},
    ],
    ids=["no-language", "unknown-data", "non-string-parameter", "both", "html"],
)
async def test_content_whatsapp_cannot_carry_fails_permanently_without_a_call(
    peer: MetaPeer, sender: MetaSender, content: dict[str, Any]
) -> None:
    error = await refused(sender, request_for(peer, content))
    assert (error.kind, error.code) == ("permanent", "WHATSAPP_INVALID_MESSAGE")
    assert peer.requests == []


async def test_a_wrong_token_is_a_permanent_auth_failure_that_does_not_show_the_token(
    peer: MetaPeer, sender: MetaSender
) -> None:
    wrong = "EAAwrong-token-value"
    error = await refused(sender, request_for(peer, credentials={"access_token": wrong}))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "WHATSAPP_AUTH_FAILED",
        "401",
    )
    assert "(#190)" in error.reason
    assert wrong not in error.reason


def test_a_token_meta_echoes_in_an_error_is_masked() -> None:
    echoed = {"error": {"message": "(#190) Bad token EAAsecret", "code": 190}}
    error = graph_error(httpx.Response(401, json=echoed), token="EAAsecret")
    assert error.reason == "(#190) Bad token ***"


@pytest.mark.parametrize(
    ("meta_code", "kind", "code"),
    [
        (131047, "permanent", "WHATSAPP_OUTSIDE_WINDOW"),
        (131026, "permanent", "WHATSAPP_131026"),
        (100, "permanent", "WHATSAPP_100"),
        (132000, "permanent", "WHATSAPP_132000"),
        (132001, "permanent", "WHATSAPP_132001"),
        (10, "permanent", "WHATSAPP_AUTH_FAILED"),
        (200, "permanent", "WHATSAPP_AUTH_FAILED"),
        (130429, "throttled", "WHATSAPP_130429"),
        (131048, "throttled", "WHATSAPP_131048"),
        (131056, "throttled", "WHATSAPP_131056"),
        (80007, "throttled", "WHATSAPP_80007"),
        (4, "throttled", "WHATSAPP_4"),
        (131000, "transient", "WHATSAPP_131000"),
        (131016, "transient", "WHATSAPP_131016"),
        (1, "transient", "WHATSAPP_1"),
        (2, "transient", "WHATSAPP_2"),
    ],
)
async def test_each_documented_error_code_has_its_kind(
    peer: MetaPeer, sender: MetaSender, meta_code: int, kind: str, code: str
) -> None:
    peer.fail_next.append(meta_code)
    error = await refused(sender, request_for(peer))
    assert (error.kind, error.code) == (kind, code)
    assert error.reason


async def test_outside_the_customer_service_window_says_why(
    peer: MetaPeer, sender: MetaSender
) -> None:
    peer.fail_for["4791234567"] = 131047
    error = await refused(sender, request_for(peer))
    assert "24 hours" in error.reason and "template" in error.reason
    assert error.provider_status == "400"


async def test_the_pair_rate_limit_waits_the_documented_six_seconds(
    peer: MetaPeer, sender: MetaSender
) -> None:
    peer.fail_next.append(131056)
    assert (await refused(sender, request_for(peer))).retry_after == 6.0


async def test_an_outage_page_is_transient_and_a_429_keeps_its_retry_after(
    peer: MetaPeer, sender: MetaSender
) -> None:
    peer.answer_next.append((502, {"Content-Type": "text/html"}, b"<h1>Bad gateway</h1>"))
    peer.answer_next.append((429, {"Retry-After": "7"}, b""))
    outage = await refused(sender, request_for(peer))
    assert (outage.kind, outage.code) == ("transient", "WHATSAPP_HTTP_502")
    throttled = await refused(sender, request_for(peer))
    assert (throttled.kind, throttled.code, throttled.retry_after) == (
        "throttled",
        "WHATSAPP_THROTTLED",
        7.0,
    )


async def test_an_unknown_phone_number_id_is_permanent(peer: MetaPeer, sender: MetaSender) -> None:
    channel = channel_of(peer, phone_number_id="999")
    error = await refused(sender, request_for(peer, channel=channel))
    assert (error.kind, error.code) == ("permanent", "WHATSAPP_100")


async def test_without_private_egress_the_loopback_peer_is_refused(peer: MetaPeer) -> None:
    guarded = MetaSender(allow_private_egress=False)
    try:
        error = await refused(guarded, request_for(peer))
    finally:
        await guarded.close()
    assert (error.kind, error.code) == ("permanent", "EGRESS_REFUSED")
    assert peer.requests == []


# -- webhook verification -------------------------------------------------------------

CREDENTIALS = {"access_token": "t", "app_secret": "test-app-secret", "verify_token": "vt"}
CHANNEL = {"id": "ch_meta", "settings": {"phone_number_id": "106540352242922"}}


def post(body: bytes, headers: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(
        method="POST",
        url="https://ocm.example/api/v1/callbacks/meta/ch_meta",
        headers={k.lower(): v for k, v in headers.items()},
        query=(),
        body=body,
    )


def get(query: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(
        method="GET",
        url="https://ocm.example/api/v1/callbacks/meta/ch_meta",
        headers={},
        query=tuple(query.items()),
        body=b"",
    )


def test_the_signature_is_sha256_hmac_hex_of_the_raw_body() -> None:
    # Meta publishes no worked vector; this is HMAC-SHA256("secret", "test") as the
    # whatsapp_sdk docs (hexdocs WhatsApp.Webhook.compute_signature) give it
    vector = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    assert signature("secret", b"test") == f"sha256={vector}"


def test_a_body_signed_as_meta_sends_it_verifies_on_its_escaped_bytes() -> None:
    peer = MetaPeer()
    body, headers = peer.signed(peer.inbound({"type": "text", "text": {"body": "äöå"}}))
    assert b"\\u00e4\\u00f6\\u00e5" in body  # Meta escapes non-ASCII before signing
    MetaCallbacks().verify(post(body, headers), CHANNEL, CREDENTIALS)
    # the same JSON re-encoded as UTF-8 is other bytes, so the signature no longer fits
    reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
    with pytest.raises(CallbackRejected):
        MetaCallbacks().verify(post(reencoded, headers), CHANNEL, CREDENTIALS)


@pytest.mark.parametrize(
    "forge",
    [
        lambda body, headers: (body + b" ", headers),
        lambda body, headers: (body, {}),
        lambda body, headers: (body, {"X-Hub-Signature-256": headers["X-Hub-Signature-256"][7:]}),
        lambda body, headers: (
            body,
            {"X-Hub-Signature-256": headers["X-Hub-Signature-256"].upper()},
        ),
        lambda body, headers: (body, MetaPeer().signature(body, "another-secret")),
        lambda body, headers: (body, {"X-Hub-Signature": headers["X-Hub-Signature-256"]}),
    ],
    ids=["tampered-body", "no-header", "no-prefix", "upper-case", "other-secret", "sha1-header"],
)
def test_a_forged_or_tampered_webhook_is_rejected(forge: Any) -> None:
    peer = MetaPeer()
    body, headers = peer.signed(peer.status("wamid.A", "delivered"))
    MetaCallbacks().verify(post(body, headers), CHANNEL, CREDENTIALS)
    with pytest.raises(CallbackRejected):
        MetaCallbacks().verify(post(*forge(body, headers)), CHANNEL, CREDENTIALS)


def test_without_an_app_secret_nothing_verifies() -> None:
    peer = MetaPeer()
    body, headers = peer.signed(peer.status("wamid.A", "delivered"), secret="")
    with pytest.raises(CallbackRejected):
        MetaCallbacks().verify(post(body, headers), CHANNEL, {**CREDENTIALS, "app_secret": ""})


def test_the_handshake_answers_the_challenge_only_for_the_verify_token() -> None:
    callbacks = MetaCallbacks()
    good = get({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "vt"})
    callbacks.verify(good, CHANNEL, CREDENTIALS)
    reply = callbacks.parse(good, CHANNEL, CREDENTIALS)
    assert (reply.status_code, reply.body, reply.media_type) == (200, b"1158201444", "text/plain")
    assert reply.events == ()
    for query in (
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "vT"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": "vt"},
    ):
        with pytest.raises(CallbackRejected):
            callbacks.verify(get(query), CHANNEL, CREDENTIALS)


# -- parsing -------------------------------------------------------------------------


def parsed(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    body = json.dumps(payload).encode()
    reply = MetaCallbacks().parse(post(body, {}), CHANNEL, CREDENTIALS)
    assert (reply.status_code, reply.body) == (200, b"")
    return [(e.kind, dict(e.payload)) for e in reply.events]


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_statuses_become_receipts_keyed_by_wamid_and_status(status: str) -> None:
    [(kind, payload)] = parsed(MetaPeer().status("wamid.HBgL", status))
    assert kind == "receipt"
    assert payload == {
        "event_id": f"wamid.HBgL:{status}",
        "provider_message_id": "wamid.HBgL",
        "status": status,
        "provider_status": status,
    }


def test_a_failed_status_outside_the_window_names_it() -> None:
    [(_, payload)] = parsed(MetaPeer().status("wamid.X", "failed", error=131047))
    assert payload["status"] == "failed"
    assert payload["error_code"] == "WHATSAPP_OUTSIDE_WINDOW"
    assert "24 hours" in payload["error_reason"]


def test_a_failed_status_carries_metas_code_and_details() -> None:
    [(_, payload)] = parsed(MetaPeer().status("wamid.X", "failed", error=131026))
    assert payload["error_code"] == "WHATSAPP_131026"
    assert payload["error_reason"] == "Message Undeliverable: Unable to deliver message."


def test_statuses_ocm_does_not_track_produce_nothing() -> None:
    assert parsed(MetaPeer().status("wamid.X", "deleted")) == []
    assert parsed(MetaPeer().status("wamid.X", "warning")) == []


def test_an_inbound_text_names_sender_receiver_and_time() -> None:
    peer = MetaPeer()
    text = {"type": "text", "text": {"body": "Where is it?"}}
    payload = peer.inbound(text, wamid="wamid.IN", timestamp=1750857384)
    [(kind, event)] = parsed(payload)
    assert kind == "inbound"
    assert event == {
        "event_id": "wamid.IN",
        "provider_message_id": "wamid.IN",
        "sender": {"type": "phone", "address": "+16315551181", "display_name": "Kerry Fisher"},
        "receiver": {"type": "phone", "address": "+14155550123"},
        "content": {"type": "text", "text": "Where is it?"},
        "received_at": "2025-06-25T13:16:24.000Z",
    }


def test_inbound_media_is_a_meta_media_reference_with_its_type_and_caption() -> None:
    image = {
        "caption": "the dent",
        "mime_type": "image/jpeg",
        "sha256": "abc",
        "id": "1479537139650973",
    }
    [(_, event)] = parsed(MetaPeer().inbound({"type": "image", "image": image}))
    assert event["content"] == {
        "type": "media",
        "url": "meta-media:1479537139650973",
        "media_type": "image/jpeg",
        "caption": "the dent",
    }
    document = {"filename": "a.pdf", "mime_type": "application/pdf", "id": "77"}
    [(_, event)] = parsed(MetaPeer().inbound({"type": "document", "document": document}))
    assert event["content"] == {
        "type": "media",
        "url": "meta-media:77",
        "media_type": "application/pdf",
    }


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "button", "button": {"text": "Yes", "payload": "YES_PAYLOAD"}}, "Yes"),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "b1", "title": "Track"},
                },
            },
            "Track",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "r1", "title": "Oslo", "description": "store"},
                },
            },
            "Oslo",
        ),
    ],
    ids=["button", "button-reply", "list-reply"],
)
def test_button_and_list_replies_arrive_as_their_text(message: dict[str, Any], text: str) -> None:
    [(_, event)] = parsed(MetaPeer().inbound(message))
    assert event["content"] == {"type": "text", "text": text}


def test_kinds_ocm_does_not_carry_and_other_numbers_and_fields_are_ignored() -> None:
    peer = MetaPeer()
    location = {"type": "location", "location": {"latitude": 59.9, "longitude": 10.7}}
    assert parsed(peer.inbound(location)) == []
    reaction = {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "+1"}}
    assert parsed(peer.inbound(reaction)) == []
    other = MetaPeer(phone_number_id="555")
    assert parsed(other.status("wamid.X", "delivered")) == []
    update = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "X"}}]}],
    }
    assert parsed(update) == []
    assert parsed({"object": "page", "entry": []}) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"object": "whatsapp_business_account", "entry": 5}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}',
    ],
    ids=["not-json", "array", "entry-not-a-list", "no-value"],
)
def test_a_verified_but_malformed_webhook_is_invalid(body: bytes) -> None:
    with pytest.raises(CallbackInvalid):
        MetaCallbacks().parse(post(body, {}), CHANNEL, CREDENTIALS)


# -- through the API -----------------------------------------------------------------


def test_whatsapp_channels_default_to_meta_at_eighty_per_second() -> None:
    [spec] = PROVIDER.specs
    assert (spec.type, spec.provider, spec.default, spec.rate_per_second) == (
        "whatsapp",
        "meta",
        True,
        80.0,
    )
    assert {c.name for c in spec.credentials if c.secret and c.required} == {
        "access_token",
        "app_secret",
        "verify_token",
    }


async def whatsapp_channel(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> tuple[dict[str, str], str]:
    """A tenant's key and the id of its whatsapp channel (no provider named: meta)."""
    key = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    created = await api.post(
        "/api/v1/channels",
        json={
            "name": "wa",
            "type": "whatsapp",
            "settings": {"base_url": peer.url, "phone_number_id": peer.phone_number_id},
            "default_sender": {"type": "phone", "address": "+" + peer.display_phone_number},
        },
        headers=key,
    )
    assert created.status_code == 201, created.text
    assert created.json()["provider"] == "meta"
    credentials = {
        "access_token": peer.access_token,
        "app_secret": peer.app_secret,
        "verify_token": peer.verify_token,
    }
    put = await api.put("/api/v1/channels/wa/credentials", json=credentials, headers=key)
    assert put.status_code == 204, put.text
    return key, created.json()["id"]


async def customer_writes(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer, channel_id: str, text: str
) -> None:
    """The customer's message reaches the channel (and opens WhatsApp's window)."""
    body, headers = peer.signed(peer.inbound({"type": "text", "text": {"body": text}}))
    answer = await api.post(f"/api/v1/callbacks/meta/{channel_id}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    await pump(deps)


async def send_text(api: httpx.AsyncClient, key: dict[str, str], to: str, text: str) -> str:
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "wa",
            "receiver": {"type": "phone", "address": to},
            "content": {"type": "text", "text": text},
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


async def test_a_reply_is_sent_then_delivered_once_and_a_forged_receipt_changes_nothing(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> None:
    key, channel_id = await whatsapp_channel(api, deps, peer)
    await customer_writes(api, deps, peer, channel_id, "Has my order shipped?")
    message_id = await send_text(api, key, "+16315551181", "Yes, this morning")
    await pump(deps)
    sent = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert sent["status"] == "sent"
    assert sent["provider_message_id"] == peer.sent[0]["id"]
    assert peer.sent[0]["to"] == "16315551181"

    callback = f"/api/v1/callbacks/meta/{channel_id}"
    body, headers = peer.signed(peer.status(sent["provider_message_id"], "delivered"))
    forged = await api.post(callback, content=body, headers=peer.signature(body, "guess"))
    assert forged.status_code == 401
    assert await pump(deps) == 0

    for _ in range(2):  # Meta retries a webhook it thinks was not received
        answer = await api.post(callback, content=body, headers=headers)
        assert (answer.status_code, answer.content) == (200, b"")
        await pump(deps)
    delivered = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert delivered["status"] == "delivered"
    assert [e["type"] for e in delivered["events"]].count("message.delivered") == 1


async def test_when_meta_finds_the_window_closed_the_message_fails_with_a_clear_code(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> None:
    key, channel_id = await whatsapp_channel(api, deps, peer)
    await customer_writes(api, deps, peer, channel_id, "Hello?")
    peer.fail_for["16315551181"] = 131047
    message_id = await send_text(api, key, "+16315551181", "Still there?")
    await pump(deps)
    failed = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "WHATSAPP_OUTSIDE_WINDOW"
    assert failed["attempts"] == 1


async def test_an_approved_template_reaches_a_customer_who_never_wrote(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> None:
    key, _ = await whatsapp_channel(api, deps, peer)
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "wa",
            "receiver": {"type": "phone", "address": CUSTOMER},
            "content": {
                "type": "template",
                "template": "order_shipped",
                "language": "en_US",
                "data": {"parameters": ["Kerry"]},
            },
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    await pump(deps)
    [sent] = peer.sent
    assert sent["type"] == "template"
    assert sent["template"]["name"] == "order_shipped"
    assert sent["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Kerry"}]


async def test_an_inbound_message_is_stored_once_however_often_meta_posts_it(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> None:
    key, channel_id = await whatsapp_channel(api, deps, peer)
    body, headers = peer.signed(
        peer.inbound({"type": "text", "text": {"body": "Hei! Når kommer den?"}})
    )
    for _ in range(2):
        answer = await api.post(
            f"/api/v1/callbacks/meta/{channel_id}", content=body, headers=headers
        )
        assert answer.status_code == 200
        await pump(deps)
    listed = (await api.get("/api/v1/messages?direction=inbound", headers=key)).json()["items"]
    [inbound] = listed
    assert inbound["content"] == {"type": "text", "text": "Hei! Når kommer den?"}
    assert inbound["sender"]["address"] == "+16315551181"
    assert inbound["receiver"] == {"type": "phone", "address": "+14155550123"}
    assert inbound["channel"] == "wa"


async def test_the_url_handshake_goes_through_the_callback_route(
    api: httpx.AsyncClient, deps: Deps, peer: MetaPeer
) -> None:
    _, channel_id = await whatsapp_channel(api, deps, peer)
    url = f"/api/v1/callbacks/meta/{channel_id}"
    answer = await api.get(url, params=peer.handshake(challenge="987654"))
    assert (answer.status_code, answer.text) == (200, "987654")
    assert answer.headers["content-type"].startswith("text/plain")
    wrong = await api.get(url, params=peer.handshake(token="not-it"))
    assert wrong.status_code == 401
    assert "987654" not in wrong.text
