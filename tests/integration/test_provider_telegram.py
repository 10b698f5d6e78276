"""The Telegram provider: its sender against a Bot API peer on 127.0.0.1, its webhook
verification and parsing, and the whole path through the API."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from shared.adapters.providers.telegram import PROVIDER, TelegramSender
from shared.domain.channels import validate_settings
from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.ports import CallbackRequest, ProviderEnv, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers import telegram as tg
from tests.peers.telegram import TelegramPeer
from tests.support.pump import pump

TOKEN = tg.EXAMPLE_TOKEN
SECRET = "s3cr3t_webhook-Token"
BOT = {"type": "telegram", "address": "@ocm_test_bot"}
SPEC = PROVIDER.specs[0]
CALLBACKS = PROVIDER.callbacks
assert CALLBACKS is not None


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def peer() -> Iterator[TelegramPeer]:
    with TelegramPeer().running() as running:
        assert isinstance(running, TelegramPeer)
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[TelegramSender]:
    s = TelegramSender(ProviderEnv(clock=Clock(), allow_private_egress=True, timeout_seconds=5))
    yield s
    await s.close()


def make_request(base_url: str, **kw: Any) -> SendRequest:
    settings = validate_settings(SPEC, {"base_url": base_url, **kw.pop("settings", {})})
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "receiver": {"type": "telegram", "address": kw.pop("to", "4242")},
        "sender": BOT,
        "content": kw.pop("content", {"type": "text", "text": "Hello Ann"}),
    }
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel={"id": "ch_1", "tenant_id": "ten_1", "settings": settings},
        credentials=kw.pop("credentials", {"bot_token": TOKEN}),
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def refused(sender: TelegramSender, request: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await sender.send(request)
    return caught.value


# -- sending ------------------------------------------------------------------


async def test_text_goes_to_send_message_with_the_token_in_the_path(peer, sender) -> None:
    result = await sender.send(make_request(peer.url))
    [request] = peer.requests
    assert (request.method, request.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"chat_id": 4242, "text": "Hello Ann", "disable_notification": False}
    assert result.provider_message_id == "4242:1"
    assert result.followups == ()


async def test_the_channel_parse_mode_and_silence_apply_to_text(peer, sender) -> None:
    settings = {"parse_mode": "MarkdownV2", "disable_notification": True}
    await sender.send(make_request(peer.url, settings=settings))
    body = peer.requests[0].json()
    assert body["parse_mode"] == "MarkdownV2"
    assert body["disable_notification"] is True


async def test_html_is_sent_as_text_with_parse_mode_html(peer, sender) -> None:
    content = {"type": "html", "html": "<b>Hello</b> Ann", "text": "Hello Ann"}
    await sender.send(make_request(peer.url, content=content))
    [(method, params)] = peer.sent
    assert method == "sendmessage"
    assert params["text"] == "<b>Hello</b> Ann"
    assert params["parse_mode"] == "HTML"


async def test_a_channel_username_is_sent_as_is_and_the_id_names_the_numeric_chat(
    peer, sender
) -> None:
    result = await sender.send(make_request(peer.url, to="@ocm_news"))
    assert peer.requests[0].json()["chat_id"] == "@ocm_news"
    assert result.provider_message_id == "-1001234567890:1"


async def test_message_ids_count_per_chat(peer, sender) -> None:
    ids = [(await sender.send(make_request(peer.url))).provider_message_id for _ in range(2)]
    assert ids == ["4242:1", "4242:2"]


@pytest.mark.parametrize(
    ("media_type", "path", "field"),
    [
        ("image/png", "sendPhoto", "photo"),
        ("application/pdf", "sendDocument", "document"),
        ("video/mp4", "sendVideo", "video"),
        ("audio/mpeg", "sendAudio", "audio"),
    ],
)
async def test_media_picks_the_method_by_its_type(peer, sender, media_type, path, field) -> None:
    url = "https://cdn.example.com/file"
    content = {"type": "media", "url": url, "media_type": media_type, "caption": "Look"}
    settings = {"parse_mode": "HTML"}
    result = await sender.send(make_request(peer.url, content=content, settings=settings))
    request = peer.requests[0]
    assert request.path == f"/bot{TOKEN}/{path}"
    assert request.json() == {
        "chat_id": 4242,
        field: url,
        "caption": "Look",
        "parse_mode": "HTML",
        "disable_notification": False,
    }
    assert result.provider_message_id == "4242:1"


async def test_media_without_caption_sends_no_parse_mode(peer, sender) -> None:
    content = {"type": "media", "url": "https://cdn.example.com/a.jpg", "media_type": "image/jpeg"}
    await sender.send(make_request(peer.url, content=content, settings={"parse_mode": "HTML"}))
    assert set(peer.requests[0].json()) == {"chat_id", "photo", "disable_notification"}


async def test_a_telegram_file_url_is_sent_as_its_file_id(peer, sender) -> None:
    content = {"type": "media", "url": "telegram-file:AgACAgIAAxkB", "media_type": "image/jpeg"}
    await sender.send(make_request(peer.url, content=content))
    assert peer.requests[0].json()["photo"] == "AgACAgIAAxkB"


async def test_the_default_base_url_is_the_public_api() -> None:
    assert validate_settings(SPEC, {})["base_url"] == "https://api.telegram.org"
    assert validate_settings(SPEC, {"base_url": "https://tg.example/"})["base_url"] == (
        "https://tg.example"
    )


@pytest.mark.parametrize(
    "settings",
    [{"parse_mode": "Markdown"}, {"base_url": "ftp://x"}, {"base_url": "https://a?b"}, {"x": 1}],
)
async def test_settings_outside_the_documented_ones_are_refused(settings) -> None:
    with pytest.raises(Exception, match="not valid"):
        validate_settings(SPEC, settings)


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind", "code", "status"),
    [
        (tg.BLOCKED, "permanent", "TELEGRAM_BLOCKED", "403"),
        (tg.DEACTIVATED, "permanent", "TELEGRAM_BLOCKED", "403"),
        (tg.KICKED, "permanent", "TELEGRAM_BLOCKED", "403"),
        (tg.CHAT_NOT_FOUND, "permanent", "TELEGRAM_CHAT_NOT_FOUND", "400"),
        (tg.bad_request("message is too long"), "permanent", "TELEGRAM_BAD_REQUEST", "400"),
        (tg.INTERNAL, "transient", "TELEGRAM_HTTP_500", "500"),
        (tg.BAD_GATEWAY, "transient", "TELEGRAM_HTTP_502", "502"),
    ],
)
async def test_documented_errors_map_to_their_kind(
    peer, sender, answer, kind, code, status
) -> None:
    peer.answers["4242"] = answer
    error = await refused(sender, make_request(peer.url))
    assert (error.kind, error.code, error.provider_status) == (kind, code, status)
    assert error.reason == answer.description


async def test_flood_control_is_throttled_for_the_seconds_it_names(peer, sender) -> None:
    peer.fail_next.append(tg.flood(17))
    error = await refused(sender, make_request(peer.url))
    assert (error.kind, error.code, error.retry_after) == ("throttled", "TELEGRAM_THROTTLED", 17.0)
    assert (await sender.send(make_request(peer.url))).provider_message_id == "4242:1"


async def test_a_success_status_without_ok_is_retried(peer, sender) -> None:
    peer.fail_next.append(tg.Answer(200, "not an answer of the Bot API"))
    error = await refused(sender, make_request(peer.url))
    assert (error.kind, error.code) == ("transient", "TELEGRAM_BAD_RESPONSE")


async def test_a_migrated_group_fails_naming_the_new_chat(peer, sender) -> None:
    peer.answers["-4242"] = tg.migrated(-1009876543210)
    error = await refused(sender, make_request(peer.url, to="-4242"))
    assert (error.kind, error.code) == ("permanent", "TELEGRAM_CHAT_MIGRATED")
    assert "-1009876543210" in error.reason
    assert error.details == {"migrate_to_chat_id": "-1009876543210"}


async def test_an_unknown_username_is_chat_not_found(peer, sender) -> None:
    error = await refused(sender, make_request(peer.url, to="@nobody_here"))
    assert error.code == "TELEGRAM_CHAT_NOT_FOUND"


async def test_the_peer_refuses_what_the_api_refuses(peer, sender) -> None:
    content = {"type": "text", "text": "x" * 4097}
    error = await refused(sender, make_request(peer.url, content=content))
    assert (error.code, error.reason) == (
        "TELEGRAM_BAD_REQUEST",
        "Bad Request: message is too long",
    )
    assert peer.sent == []


async def test_a_wrong_token_is_unauthorized_and_never_shown(peer, sender) -> None:
    wrong = "654321:ZZZ-wrong-key-zyx57W2v1u123ew11"
    error = await refused(sender, make_request(peer.url, credentials={"bot_token": wrong}))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "TELEGRAM_UNAUTHORIZED",
        "401",
    )
    assert "wrong-key" not in str(error)


@pytest.mark.parametrize("token", ["", "no-colon", "1:a/../../x", "123:abc?x=1", "12:ab cd"])
async def test_a_malformed_token_is_refused_before_any_call(peer, sender, token) -> None:
    error = await refused(sender, make_request(peer.url, credentials={"bot_token": token}))
    assert (error.kind, error.code) == ("permanent", "TELEGRAM_UNAUTHORIZED")
    assert peer.requests == []


async def test_a_description_that_echoes_the_token_is_masked(peer, sender) -> None:
    key = TOKEN.partition(":")[2]
    peer.answers["4242"] = tg.bad_request(f"token {TOKEN} is odd")
    error = await refused(sender, make_request(peer.url))
    assert key not in error.reason
    assert error.reason == "Bad Request: token 123456:*** is odd"


async def test_httpx_log_lines_do_not_carry_the_token(peer, sender, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        await sender.send(make_request(peer.url))
    assert "/bot***/sendMessage" in caplog.text
    assert TOKEN.partition(":")[2] not in caplog.text


async def test_an_unreachable_api_is_transient(sender) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = await refused(sender, make_request(f"http://127.0.0.1:{port}"))
    assert (error.kind, error.code) == ("transient", "TELEGRAM_CONNECTION_FAILED")
    assert TOKEN.partition(":")[2] not in str(error)


async def test_without_private_egress_the_loopback_peer_is_refused(peer) -> None:
    guarded = TelegramSender(ProviderEnv(clock=Clock(), allow_private_egress=False))
    try:
        error = await refused(guarded, make_request(peer.url))
    finally:
        await guarded.close()
    assert (error.kind, error.code) == ("permanent", "EGRESS_REFUSED")
    assert peer.requests == []


# -- the webhook --------------------------------------------------------------

CHANNEL = {"id": "ch_1", "tenant_id": "ten_1", "default_sender": BOT}
CREDENTIALS = {"bot_token": TOKEN, "webhook_secret": SECRET}


def webhook(update: dict[str, Any], secret: str | None = SECRET) -> CallbackRequest:
    headers = {k.lower(): v for k, v in tg.webhook_headers(secret).items()}
    return CallbackRequest(
        method="POST",
        url="https://ocm.example/api/v1/callbacks/telegram/ch_1",
        headers=headers,
        query=(),
        body=orjson.dumps(update),
    )


def test_the_secret_token_header_verifies() -> None:
    CALLBACKS.verify(webhook(tg.text_update("hi")), CHANNEL, CREDENTIALS)


@pytest.mark.parametrize(
    ("secret", "credentials"),
    [
        (None, CREDENTIALS),
        ("", CREDENTIALS),
        ("wrong", CREDENTIALS),
        (SECRET[:-1], CREDENTIALS),
        (SECRET + "x", CREDENTIALS),
        (SECRET.upper(), CREDENTIALS),
        (SECRET, {"bot_token": TOKEN}),
        ("", {"bot_token": TOKEN, "webhook_secret": ""}),
    ],
)
def test_a_missing_or_different_secret_is_rejected(secret, credentials) -> None:
    with pytest.raises(CallbackRejected):
        CALLBACKS.verify(webhook(tg.text_update("hi"), secret), CHANNEL, credentials)


def test_a_non_ascii_secret_header_is_rejected_not_an_error() -> None:
    request = webhook(tg.text_update("hi"))
    request = CallbackRequest(
        request.method,
        request.url,
        {**request.headers, "x-telegram-bot-api-secret-token": "sécret"},
        (),
        request.body,
    )
    with pytest.raises(CallbackRejected):
        CALLBACKS.verify(request, CHANNEL, CREDENTIALS)


async def test_the_secret_given_to_set_webhook_is_the_one_updates_carry(peer) -> None:
    callback_url = "https://ocm.example/api/v1/callbacks/telegram/ch_1"
    async with httpx.AsyncClient(base_url=f"{peer.url}/bot{TOKEN}") as bot_api:
        refused = await bot_api.post(
            "/setWebhook", data={"url": callback_url, "secret_token": "no spaces"}
        )
        accepted = await bot_api.post(
            "/setWebhook", data={"url": callback_url, "secret_token": SECRET}
        )
    assert (refused.status_code, refused.json()["ok"]) == (400, False)
    assert accepted.json() == {"ok": True, "result": True, "description": "Webhook was set"}
    assert (peer.webhook_url, peer.webhook_secret) == (callback_url, SECRET)
    update = tg.text_update("hi")
    CALLBACKS.verify(webhook(update, peer.webhook_secret), CHANNEL, CREDENTIALS)


def parse(update: dict[str, Any]) -> list[dict[str, Any]]:
    reply = CALLBACKS.parse(webhook(update), CHANNEL, CREDENTIALS)
    assert (reply.status_code, reply.body) == (200, b"")
    assert all(e.kind == "inbound" for e in reply.events)
    return [dict(e.payload) for e in reply.events]


def test_a_text_message_becomes_an_inbound_event() -> None:
    update = tg.text_update("Hi there", update_id=900, chat_id=4242, message_id=31)
    assert parse(update) == [
        {
            "event_id": "900",
            "provider_message_id": "4242:31",
            "sender": {"type": "telegram", "address": "4242", "display_name": "Ann Example"},
            "receiver": BOT,
            "content": {"type": "text", "text": "Hi there"},
            "received_at": "2026-01-01T00:00:00.000Z",
        }
    ]


def test_a_group_message_comes_from_its_user_in_the_groups_chat() -> None:
    update = tg.text_update("hello group", chat_id=-4242, from_id=77, message_id=3)
    [event] = parse(update)
    assert event["sender"]["address"] == "77"
    assert event["provider_message_id"] == "-4242:3"


def test_a_photo_becomes_media_of_its_largest_size_with_the_caption() -> None:
    [event] = parse(tg.photo_update(("s", "m", "l"), caption="Our cat"))
    assert event["content"] == {
        "type": "media",
        "url": "telegram-file:l",
        "media_type": "image/jpeg",
        "caption": "Our cat",
    }


def test_a_document_keeps_its_mime_type_or_falls_back() -> None:
    [pdf] = parse(tg.document_update("BQAC", mime_type="application/pdf"))
    [bare] = parse(tg.document_update("BQAD", mime_type=None))
    assert (pdf["content"]["url"], pdf["content"]["media_type"]) == (
        "telegram-file:BQAC",
        "application/pdf",
    )
    assert bare["content"]["media_type"] == "application/octet-stream"
    assert "caption" not in bare["content"]


def test_a_voice_note_is_audio() -> None:
    voice = {"file_id": "AwAC", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg"}
    [event] = parse(tg.message_update(tg.user_message(voice=voice)))
    assert event["content"]["media_type"] == "audio/ogg"


def test_a_channel_post_comes_from_the_channel() -> None:
    [event] = parse(tg.channel_post_update("News!", chat_id=-1001234567890, update_id=5))
    assert event["sender"] == {
        "type": "telegram",
        "address": "-1001234567890",
        "display_name": "OCM news",
    }
    assert event["provider_message_id"] == "-1001234567890:7"


@pytest.mark.parametrize(
    "update",
    [
        tg.message_update(tg.text_update("edited")["message"], kind="edited_message"),
        {"update_id": 1, "callback_query": {"id": "1", "from": {"id": 1}, "data": "x"}},
        {"update_id": 2, "my_chat_member": {"chat": {"id": 1}}},
        tg.message_update(tg.user_message(sticker={"file_id": "CAAC", "type": "regular"})),
        tg.message_update(tg.user_message(location={"latitude": 1.0, "longitude": 2.0})),
    ],
)
def test_what_ocm_does_not_carry_is_acknowledged_without_events(update) -> None:
    assert parse(update) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"message": {"text": "no update id"}}',
        b'{"update_id": true}',
        b'{"update_id": 1, "message": "text"}',
        b'{"update_id": 1, "message": {"message_id": 1, "text": "no chat"}}',
        b'{"update_id": 1, "message": {"chat": {"id": 1}, "text": "no message id"}}',
    ],
)
def test_a_malformed_update_is_invalid(body) -> None:
    request = CallbackRequest("POST", "https://ocm.example/x", {}, (), body)
    with pytest.raises(CallbackInvalid):
        CALLBACKS.parse(request, CHANNEL, CREDENTIALS)


# -- through the API ------------------------------------------------------------


async def telegram_channel(
    api: httpx.AsyncClient, deps: Deps, peer: TelegramPeer
) -> tuple[dict[str, str], str]:
    """A tenant with a telegram channel on the peer; its API key header and channel id."""
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    channel = await api.post(
        "/api/v1/channels",
        json={
            "name": "tg",
            "type": "telegram",
            "settings": {"base_url": peer.url},
            "default_sender": BOT,
        },
        headers=key,
    )
    assert channel.status_code == 201, channel.text
    assert channel.json()["provider"] == "telegram"  # the type's default provider
    stored = await api.put(
        "/api/v1/channels/tg/credentials",
        json={"bot_token": TOKEN, "webhook_secret": SECRET},
        headers=key,
    )
    assert stored.is_success, stored.text
    return key, channel.json()["id"]


async def inbound(api: httpx.AsyncClient, key: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await api.get("/api/v1/messages?direction=inbound", headers=key)
    ).json()["items"]
    return items


async def test_through_the_api_a_message_is_sent_and_a_reply_arrives_once(api, deps, peer) -> None:
    key, channel_id = await telegram_channel(api, deps, peer)
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "tg",
            "receiver": {"type": "telegram", "address": "4242"},
            "content": {"type": "text", "text": "Your order shipped"},
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted.json()['id']}", headers=key)).json()
    assert (message["status"], message["provider_message_id"]) == ("sent", "4242:1")
    assert peer.sent == [
        (
            "sendmessage",
            {"chat_id": 4242, "text": "Your order shipped", "disable_notification": False},
        )
    ]

    update = orjson.dumps(tg.text_update("Thanks!", chat_id=4242, message_id=2))
    url = f"/api/v1/callbacks/telegram/{channel_id}"
    for _ in range(2):
        answer = await api.post(url, content=update, headers=tg.webhook_headers(SECRET))
        assert (answer.status_code, answer.content) == (200, b"")
        await pump(deps)
    [reply] = await inbound(api, key)
    assert reply["sender"] == {"type": "telegram", "address": "4242", "display_name": "Ann Example"}
    assert reply["receiver"] == BOT
    assert reply["content"] == {"type": "text", "text": "Thanks!"}
    assert reply["provider_message_id"] == "4242:2"


async def test_through_the_api_a_bad_secret_is_401_and_nothing_is_stored(api, deps, peer) -> None:
    key, channel_id = await telegram_channel(api, deps, peer)
    url = f"/api/v1/callbacks/telegram/{channel_id}"
    update = orjson.dumps(tg.text_update("spoofed"))
    for secret in ("not-the-secret", None):
        answer = await api.post(url, content=update, headers=tg.webhook_headers(secret))
        assert answer.status_code == 401
        assert answer.json()["code"] == "CALLBACK_SIGNATURE_INVALID"
    await pump(deps)
    assert await inbound(api, key) == []


async def test_through_the_api_a_blocked_chat_fails_the_message(api, deps, peer) -> None:
    key, _ = await telegram_channel(api, deps, peer)
    peer.answers["4242"] = tg.BLOCKED
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "tg",
            "receiver": {"type": "telegram", "address": "4242"},
            "content": {"type": "text", "text": "hello?"},
        },
        headers=key,
    )
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted.json()['id']}", headers=key)).json()
    assert message["status"] == "failed"
    assert message["error"]["code"] == "TELEGRAM_BLOCKED"
    assert message["attempts"] == 1
    assert TOKEN not in orjson.dumps(message).decode()
