"""Twilio Programmable Messaging (sms, whatsapp): the sender against a peer that follows
Twilio's Messages API, X-Twilio-Signature as Twilio documents it, callbacks into events,
and the whole path through OCM's API."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from shared import bootstrap
from shared.adapters.embedded.clock import SystemClock
from shared.adapters.providers.twilio import PROVIDER, TwilioSender
from shared.adapters.providers.twilio_callbacks import EMPTY_TWIML, TwilioCallbacks
from shared.api.app import create_app
from shared.config import Settings
from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.ports import CallbackRequest, ProviderEnv, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.twilio import Failure, TwilioPeer
from tests.support.pump import pump

SENDER = "+15005550006"
RECEIVER = "+4791234567"
CUSTOMER = "+4798765432"
SIGNER = TwilioPeer()  # signs callbacks as Twilio would; needs no server for that


@pytest.fixture
def peer() -> Iterator[TwilioPeer]:
    twilio = TwilioPeer()
    with twilio.running():
        # One request first: a peer stopped before its loop serves can keep running
        # (tests/peers/base.py sets ``started`` before ``run_forever``).
        httpx.get(f"{twilio.url}/")
        twilio.requests.clear()
        yield twilio


@pytest.fixture
async def sender() -> AsyncIterator[TwilioSender]:
    twilio = TwilioSender(ProviderEnv(clock=SystemClock(), allow_private_egress=True))
    yield twilio
    await twilio.close()


def send_request(
    peer: TwilioPeer,
    *,
    channel_type: str = "sms",
    receiver: str = RECEIVER,
    sender: str | None = SENDER,
    content: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> SendRequest:
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "receiver": {"type": "phone", "address": receiver},
        "sender": {"type": "phone", "address": sender} if sender else None,
        "content": content or {"type": "text", "text": "Your code is 1234"},
    }
    channel = {
        "id": "ch_1",
        "tenant_id": "ten_1",
        "type": channel_type,
        "settings": {"base_url": peer.url, **(settings or {})},
    }
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel=channel,
        credentials=peer.credentials if credentials is None else credentials,
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def failure(sender: TwilioSender, request: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await sender.send(request)
    return err.value


# -- sending ---------------------------------------------------------------------


async def test_an_sms_is_a_form_post_to_the_accounts_messages_and_yields_the_message_sid(
    peer: TwilioPeer, sender: TwilioSender
) -> None:
    callback = "https://ocm.example.com/api/v1/callbacks/twilio/ch_1"
    result = await sender.send(send_request(peer, settings={"status_callback_url": callback}))
    [recorded] = peer.requests
    assert recorded.method == "POST"
    assert recorded.path == f"/2010-04-01/Accounts/{peer.account_sid}/Messages.json"
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (
        recorded.headers["authorization"]
        == httpx.BasicAuth(peer.account_sid, peer.auth_token)._auth_header
    )
    assert peer.messages == [
        {
            "To": [RECEIVER],
            "From": [SENDER],
            "Body": ["Your code is 1234"],
            "StatusCallback": [callback],
        }
    ]
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("SM")


async def test_without_a_status_callback_url_no_status_callback_is_sent(peer, sender) -> None:
    await sender.send(send_request(peer))
    assert "StatusCallback" not in peer.messages[0]


async def test_a_messaging_service_sends_instead_of_a_from_number(peer, sender) -> None:
    service = "MG" + "a" * 32
    await sender.send(send_request(peer, settings={"messaging_service_sid": service}))
    assert peer.messages[0]["MessagingServiceSid"] == [service]
    assert "From" not in peer.messages[0]


async def test_an_alphanumeric_sender_is_the_from(peer, sender) -> None:
    await sender.send(send_request(peer, sender="Acme"))
    assert peer.messages[0]["From"] == ["Acme"]


async def test_media_and_attachment_urls_become_repeated_media_urls(peer, sender) -> None:
    media = {
        "type": "media",
        "url": "https://cdn.example.com/a.png",
        "media_type": "image/png",
        "caption": "Look",
    }
    result = await sender.send(send_request(peer, content=media))
    text = {
        "type": "text",
        "text": "Two files",
        "attachments": [
            {"filename": "a.png", "content_type": "image/png", "url": "https://x.example/a"},
            {"filename": "b.pdf", "content_type": "application/pdf", "url": "https://x.example/b"},
        ],
    }
    await sender.send(send_request(peer, content=text))
    assert peer.messages[0]["MediaUrl"] == ["https://cdn.example.com/a.png"]
    assert peer.messages[0]["Body"] == ["Look"]
    assert peer.messages[1]["MediaUrl"] == ["https://x.example/a", "https://x.example/b"]
    assert result.provider_message_id and result.provider_message_id.startswith("MM")


async def test_a_base64_attachment_is_refused_without_calling_twilio(peer, sender) -> None:
    text = {
        "type": "text",
        "text": "x",
        "attachments": [{"filename": "a", "content_type": "a/b", "content": "eA=="}],
    }
    err = await failure(sender, send_request(peer, content=text))
    assert (err.kind, err.code) == ("permanent", "TWILIO_INVALID_MESSAGE")
    assert peer.requests == []


async def test_whatsapp_addresses_carry_the_whatsapp_prefix(peer, sender) -> None:
    await sender.send(send_request(peer, channel_type="whatsapp"))
    assert peer.messages[0]["To"] == [f"whatsapp:{RECEIVER}"]
    assert peer.messages[0]["From"] == [f"whatsapp:{SENDER}"]


async def test_a_whatsapp_template_is_a_content_sid_with_its_variables(peer, sender) -> None:
    template = {"type": "template", "template": "HX" + "b" * 32, "data": {"1": "12/1", "2": "3pm"}}
    await sender.send(send_request(peer, channel_type="whatsapp", content=template))
    assert peer.messages[0]["ContentSid"] == ["HX" + "b" * 32]
    assert peer.messages[0]["ContentVariables"] == ['{"1":"12/1","2":"3pm"}']
    assert "Body" not in peer.messages[0]


async def test_an_api_key_authenticates_in_place_of_the_auth_token(peer, sender) -> None:
    credentials = {
        "account_sid": peer.account_sid,
        "auth_token": "used-only-for-callbacks",
        "api_key_sid": peer.api_key_sid,
        "api_key_secret": peer.api_key_secret,
    }
    await sender.send(send_request(peer, credentials=credentials))
    assert (
        peer.requests[0].headers["authorization"]
        == httpx.BasicAuth(peer.api_key_sid, peer.api_key_secret)._auth_header
    )


async def test_a_wrong_auth_token_is_a_permanent_20003_that_never_shows_the_token(
    peer, sender
) -> None:
    credentials = {"account_sid": peer.account_sid, "auth_token": "wrong-hunter2"}
    err = await failure(sender, send_request(peer, credentials=credentials))
    assert (err.kind, err.code, err.provider_status) == ("permanent", "TWILIO_20003", "401")
    assert "wrong-hunter2" not in f"{err} {err!r} {err.details}"
    assert peer.messages == []


async def test_missing_credentials_are_permanent_without_calling_twilio(peer, sender) -> None:
    err = await failure(sender, send_request(peer, credentials={}))
    assert (err.kind, err.code) == ("permanent", "TWILIO_CREDENTIALS_MISSING")
    assert peer.requests == []


@pytest.mark.parametrize(
    ("receiver", "sender_number", "kind", "code"),
    [
        ("+15005550001", SENDER, "permanent", "TWILIO_21211"),  # invalid To
        ("+15005550002", SENDER, "permanent", "TWILIO_21612"),  # cannot route
        ("+15005550003", SENDER, "permanent", "TWILIO_21408"),  # region not enabled
        ("+15005550004", SENDER, "permanent", "TWILIO_21610"),  # unsubscribed (STOP)
        ("+15005550009", SENDER, "permanent", "TWILIO_21614"),  # not a mobile number
        (RECEIVER, "+15005550001", "permanent", "TWILIO_21212"),  # invalid From
        (RECEIVER, "+15005550007", "permanent", "TWILIO_21606"),  # not your number
        (RECEIVER, "+15005550008", "throttled", "TWILIO_21611"),  # the From's queue is full
    ],
)
async def test_twilios_documented_error_codes_map_to_their_kind(
    peer, sender, receiver, sender_number, kind, code
) -> None:
    err = await failure(sender, send_request(peer, receiver=receiver, sender=sender_number))
    assert (err.kind, err.code, err.provider_status) == (kind, code, "400")
    assert err.reason  # Twilio's own message


async def test_a_429_is_throttled_and_keeps_retry_after(peer, sender) -> None:
    peer.fail_next.append(Failure(429, 20429, "Too Many Requests", {"Retry-After": "7"}))
    err = await failure(sender, send_request(peer))
    assert (err.kind, err.code, err.retry_after, err.provider_status) == (
        "throttled",
        "TWILIO_20429",
        7.0,
        "429",
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (500, 20500, "TWILIO_20500"),
        (503, 20503, "TWILIO_20503"),
        (400, 20503, "TWILIO_20503"),  # Twilio's code decides, whatever the HTTP status
        (502, None, "TWILIO_HTTP_502"),  # a page from a proxy, not Twilio's body
    ],
)
async def test_server_errors_are_transient(peer, sender, status, code, expected) -> None:
    peer.fail_next.append(Failure(status, code))
    err = await failure(sender, send_request(peer))
    assert (err.kind, err.code, err.provider_status) == ("transient", expected, str(status))


async def test_an_answer_without_twilios_error_body_maps_by_http_status(peer, sender) -> None:
    err = await failure(sender, send_request(peer, settings={"base_url": f"{peer.url}/nowhere"}))
    assert (err.kind, err.code) == ("permanent", "TWILIO_HTTP_404")


async def test_a_closed_port_is_a_transient_connection_failure(sender) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    err = await failure(sender, send_request(SIGNER, settings={"base_url": url}))
    assert (err.kind, err.code) == ("transient", "TWILIO_CONNECTION_FAILED")


async def test_private_destinations_are_refused_without_permission(peer) -> None:
    guarded = TwilioSender(ProviderEnv(clock=SystemClock(), allow_private_egress=False))
    err = await failure(guarded, send_request(peer))
    await guarded.close()
    assert (err.kind, err.code) == ("permanent", "EGRESS_REFUSED")
    assert peer.requests == []


def test_the_module_declares_sms_as_default_and_whatsapp_as_an_alternative() -> None:
    specs = {spec.type: spec for spec in PROVIDER.specs}
    assert (specs["sms"].default, specs["sms"].rate_per_second) == (True, 1.0)
    assert specs["sms"].content_types == ("text", "media")
    assert specs["whatsapp"].default is False
    assert all(spec.callbacks and spec.receipts for spec in specs.values())
    secret = {f.name for f in specs["sms"].credentials if f.secret}
    assert secret == {"auth_token", "api_key_secret"}


# -- X-Twilio-Signature ----------------------------------------------------------

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]
DOCS_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="  # Twilio's webhooks-security example
CALLBACKS = TwilioCallbacks()


def callback_request(
    url: str, params: list[tuple[str, str]], signature: str | None, method: str = "POST"
) -> CallbackRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return CallbackRequest(
        method=method,
        url=url,
        headers=headers,
        query=[("foo", "1"), ("bar", "2")],
        body=urlencode(params).encode() if method == "POST" else b"",
    )


def test_twilios_documented_example_verifies() -> None:
    request = callback_request(DOCS_URL, DOCS_PARAMS, DOCS_SIGNATURE)
    CALLBACKS.verify(request, {}, {"auth_token": "12345"})


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        # twilio-python's own vectors: other numbers, and a repeated parameter
        (
            DOCS_URL,
            [(k, v.replace("+12349013030", "+14158675309")) for k, v in DOCS_PARAMS],
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        ),
        (
            DOCS_URL,
            [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")],
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        ),
        # Twilio signed the URL with the default port, or without the one we see
        (
            DOCS_URL,
            [(k, v.replace("+12349013030", "+14158675309")) for k, v in DOCS_PARAMS],
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        (
            DOCS_URL.replace(".com", ".com:1234"),
            [(k, v.replace("+12349013030", "+14158675309")) for k, v in DOCS_PARAMS],
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        ),
    ],
)
def test_the_helper_librarys_vectors_verify(url, params, signature) -> None:
    CALLBACKS.verify(callback_request(url, params, signature), {}, {"auth_token": "12345"})


@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        (DOCS_URL, DOCS_PARAMS, DOCS_SIGNATURE, "12346"),  # another auth token
        (
            DOCS_URL,
            [*DOCS_PARAMS[:2], ("Digits", "1235"), *DOCS_PARAMS[3:]],
            DOCS_SIGNATURE,
            "12345",
        ),
        (DOCS_URL, [*DOCS_PARAMS, ("Extra", "")], DOCS_SIGNATURE, "12345"),  # a parameter added
        (DOCS_URL, DOCS_PARAMS[1:], DOCS_SIGNATURE, "12345"),  # a parameter dropped
        (DOCS_URL.replace("https", "http"), DOCS_PARAMS, DOCS_SIGNATURE, "12345"),
        (DOCS_URL.replace("foo=1", "foo=2"), DOCS_PARAMS, DOCS_SIGNATURE, "12345"),
        (DOCS_URL, DOCS_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "12345"),  # truncated
        (DOCS_URL, DOCS_PARAMS, "", "12345"),
        (DOCS_URL, DOCS_PARAMS, None, "12345"),  # no header at all
        (DOCS_URL, DOCS_PARAMS, DOCS_SIGNATURE, ""),  # the channel has no auth token
    ],
)
def test_a_tampered_or_unsigned_callback_is_rejected(url, params, signature, token) -> None:
    with pytest.raises(CallbackRejected):
        CALLBACKS.verify(callback_request(url, params, signature), {}, {"auth_token": token})


def test_a_get_callback_is_signed_over_its_url_alone() -> None:
    url = "https://ocm.example.com/api/v1/callbacks/twilio/ch_1?MessageSid=SM1&MessageStatus=sent"
    signed = SIGNER.signed(url, [])
    request = CallbackRequest(
        method="GET",
        url=url,
        headers={"x-twilio-signature": signed.headers["X-Twilio-Signature"]},
        query=[("MessageSid", "SM1"), ("MessageStatus", "sent")],
        body=b"",
    )
    CALLBACKS.verify(request, {}, {"auth_token": SIGNER.auth_token})
    [event] = CALLBACKS.parse(request, {}, {}).events
    assert event.payload["status"] == "sent"


# -- callbacks into events ---------------------------------------------------------

HOOK = "https://ocm.example.com/api/v1/callbacks/twilio/ch_1"


def parsed(signed: Any) -> Any:
    request = CallbackRequest(
        method="POST",
        url=signed.url,
        headers={k.lower(): v for k, v in signed.headers.items()},
        query=[],
        body=signed.body,
    )
    CALLBACKS.verify(request, {}, SIGNER.credentials)
    return CALLBACKS.parse(request, {}, SIGNER.credentials)


@pytest.mark.parametrize(
    ("twilio_status", "ocm_status"),
    [("sent", "sent"), ("delivered", "delivered"), ("read", "read")],
)
def test_a_status_callback_is_a_receipt_keyed_by_sid_and_status(twilio_status, ocm_status) -> None:
    reply = parsed(SIGNER.status_callback(HOOK, "SM" + "1" * 32, twilio_status))
    [event] = reply.events
    assert event.kind == "receipt"
    assert event.payload == {
        "event_id": f"SM{'1' * 32}:{twilio_status}",
        "provider_message_id": "SM" + "1" * 32,
        "status": ocm_status,
        "provider_status": twilio_status,
    }
    assert (reply.status_code, reply.body) == (200, b"")


@pytest.mark.parametrize("twilio_status", ["queued", "sending", "accepted", "scheduled"])
def test_intermediate_statuses_record_nothing(twilio_status) -> None:
    reply = parsed(SIGNER.status_callback(HOOK, "SM1", twilio_status))
    assert (reply.events, reply.status_code) == ((), 200)


def test_undelivered_is_failed_with_twilios_error_code() -> None:
    [event] = parsed(SIGNER.status_callback(HOOK, "SM1", "undelivered", error_code="30003")).events
    assert event.payload["status"] == "failed"
    assert event.payload["error_code"] == "TWILIO_30003"
    assert event.payload["error_reason"] == "Unreachable destination handset"
    assert "opt_out" not in event.payload


def test_failed_without_an_error_code_is_twilio_failed() -> None:
    [event] = parsed(SIGNER.status_callback(HOOK, "SM1", "failed")).events
    assert (event.payload["status"], event.payload["error_code"]) == ("failed", "TWILIO_FAILED")


def test_a_21610_failure_records_the_receivers_opt_out() -> None:
    [event] = parsed(SIGNER.status_callback(HOOK, "SM1", "failed", error_code="21610")).events
    assert event.payload["opt_out"] == "unsubscribe"
    assert event.payload["error_code"] == "TWILIO_21610"


def test_an_incoming_sms_is_an_inbound_text_answered_with_empty_twiml() -> None:
    signed = SIGNER.incoming_message(
        HOOK, sender=CUSTOMER, to=SENDER, body="Hello", message_sid="SM9"
    )
    reply = parsed(signed)
    [event] = reply.events
    assert event.kind == "inbound"
    assert event.payload == {
        "event_id": "SM9",
        "provider_message_id": "SM9",
        "sender": {"type": "phone", "address": CUSTOMER},
        "receiver": {"type": "phone", "address": SENDER},
        "content": {"type": "text", "text": "Hello"},
    }
    assert (reply.status_code, reply.media_type) == (200, "text/xml")
    assert reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def test_an_incoming_whatsapp_photo_is_media_from_the_bare_number() -> None:
    signed = SIGNER.incoming_message(
        HOOK,
        sender=f"whatsapp:{CUSTOMER}",
        to=f"whatsapp:{SENDER}",
        body="My receipt",
        media=(
            ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg"),
        ),
        profile_name="Kari",
    )
    [event] = parsed(signed).events
    assert event.payload["sender"] == {"type": "phone", "address": CUSTOMER, "display_name": "Kari"}
    assert event.payload["receiver"] == {"type": "phone", "address": SENDER}
    assert event.payload["content"] == {
        "type": "media",
        "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "media_type": "image/jpeg",
        "caption": "My receipt",
    }


def test_an_incoming_mms_with_several_media_is_text_with_attachments() -> None:
    media = (("https://m.example/ME1", "image/png"), ("https://m.example/ME2", "video/mp4"))
    signed = SIGNER.incoming_message(HOOK, sender=CUSTOMER, to=SENDER, media=media)
    [event] = parsed(signed).events
    assert event.payload["content"] == {
        "type": "text",
        "text": "",
        "attachments": [
            {"filename": "ME1", "content_type": "image/png", "url": "https://m.example/ME1"},
            {"filename": "ME2", "content_type": "video/mp4", "url": "https://m.example/ME2"},
        ],
    }


def test_an_incoming_message_with_neither_text_nor_media_is_acknowledged_only() -> None:
    reply = parsed(SIGNER.incoming_message(HOOK, sender=CUSTOMER, to=SENDER))
    assert (reply.events, reply.body) == ((), EMPTY_TWIML)


@pytest.mark.parametrize(
    "params",
    [
        [("MessageStatus", "delivered")],  # no MessageSid
        [("MessageSid", "SM1")],  # no status
        [("MessageSid", "SM1"), ("SmsStatus", "received"), ("To", SENDER)],  # no From
        [
            ("MessageSid", "SM1"),
            ("SmsStatus", "received"),
            ("From", CUSTOMER),
            ("To", SENDER),
            ("NumMedia", "x"),
        ],
        [
            ("MessageSid", "SM1"),
            ("SmsStatus", "received"),
            ("From", CUSTOMER),
            ("To", SENDER),
            ("NumMedia", "1"),
        ],  # MediaUrl0 missing
    ],
)
def test_a_verified_but_malformed_callback_is_invalid(params) -> None:
    with pytest.raises(CallbackInvalid):
        parsed(SIGNER.signed(HOOK, params))


# -- through OCM's API --------------------------------------------------------------


async def sms_channel(api: httpx.AsyncClient, headers: dict[str, str], peer: TwilioPeer) -> str:
    """Creates channel ``sms-main`` on the peer and returns its callback URL."""
    created = await api.post(
        "/api/v1/channels",
        headers=headers,
        json={
            "name": "sms-main",
            "type": "sms",
            "provider": "twilio",
            "settings": {"base_url": peer.url},
            "default_sender": {"type": "phone", "address": SENDER},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["provider"] == "twilio"
    callback: str = created.json()["callback_url"]
    settings = {"base_url": peer.url, "status_callback_url": callback}
    patched = await api.patch(
        "/api/v1/channels/sms-main", headers=headers, json={"settings": settings}
    )
    assert patched.status_code == 200, patched.text
    put = await api.put(
        "/api/v1/channels/sms-main/credentials", headers=headers, json=peer.credentials
    )
    assert put.status_code == 204, put.text
    return callback


async def post_callback(api: httpx.AsyncClient, signed: Any) -> httpx.Response:
    return await api.post(urlsplit(signed.url).path, content=signed.body, headers=signed.headers)


@pytest.fixture
async def key(deps: Deps) -> dict[str, str]:
    created = await signup.create_tenant(deps, "acme")
    return {"X-API-Key": created.api_key}


async def test_an_sms_is_sent_and_its_delivery_receipt_arrives_once(
    api: httpx.AsyncClient, deps: Deps, key: dict[str, str], peer: TwilioPeer
) -> None:
    callback = await sms_channel(api, key, peer)
    accepted = await api.post(
        "/api/v1/messages",
        headers=key,
        json={
            "channel": "sms-main",
            "receiver": {"type": "phone", "address": RECEIVER},
            "content": {"type": "text", "text": "Your code is 1234"},
        },
    )
    assert accepted.status_code == 202, accepted.text
    url = f"/api/v1/messages/{accepted.json()['id']}"
    await pump(deps)
    assert peer.messages[0]["StatusCallback"] == [callback]
    sent = (await api.get(url, headers=key)).json()
    assert sent["status"] == "sent"
    delivered = peer.status_callback(
        callback, sent["provider_message_id"], "delivered", to=RECEIVER
    )

    answer = await post_callback(api, delivered)
    assert (answer.status_code, answer.content) == (200, b"")
    await pump(deps)
    first = (await api.get(url, headers=key)).json()
    assert first["status"] == "delivered"

    again = await post_callback(api, delivered)
    assert again.status_code == 200
    await pump(deps)
    assert (await api.get(url, headers=key)).json() == first


async def test_a_callback_with_a_bad_signature_is_401_and_changes_nothing(
    api: httpx.AsyncClient, deps: Deps, key: dict[str, str], peer: TwilioPeer
) -> None:
    callback = await sms_channel(api, key, peer)
    accepted = await api.post(
        "/api/v1/messages",
        headers=key,
        json={
            "channel": "sms-main",
            "receiver": {"type": "phone", "address": RECEIVER},
            "content": {"type": "text", "text": "Hi"},
        },
    )
    await pump(deps)
    url = f"/api/v1/messages/{accepted.json()['id']}"
    before = (await api.get(url, headers=key)).json()
    forged = TwilioPeer(account_sid=peer.account_sid, auth_token="not-the-token")
    for signed in (
        forged.status_callback(callback, before["provider_message_id"], "failed"),
        forged.incoming_message(callback, sender=CUSTOMER, to=SENDER, body="Hi"),
    ):
        answer = await post_callback(api, signed)
        assert answer.status_code == 401
        assert answer.json()["code"] == "CALLBACK_SIGNATURE_INVALID"
    assert await pump(deps) == 0
    assert (await api.get(url, headers=key)).json() == before
    inbound = await api.get("/api/v1/messages", params={"direction": "inbound"}, headers=key)
    assert inbound.json()["items"] == []


async def test_an_incoming_sms_becomes_one_inbound_message(
    api: httpx.AsyncClient, deps: Deps, key: dict[str, str], peer: TwilioPeer
) -> None:
    callback = await sms_channel(api, key, peer)
    signed = peer.incoming_message(
        callback, sender=CUSTOMER, to=SENDER, body="When do you open?", message_sid="SM" + "7" * 32
    )
    for _ in range(2):
        answer = await post_callback(api, signed)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.content == EMPTY_TWIML
        await pump(deps)
    inbound = await api.get("/api/v1/messages", params={"direction": "inbound"}, headers=key)
    [message] = inbound.json()["items"]
    assert message["sender"] == {"type": "phone", "address": CUSTOMER}
    assert message["receiver"] == {"type": "phone", "address": SENDER}
    assert message["content"] == {"type": "text", "text": "When do you open?"}
    assert message["provider_message_id"] == "SM" + "7" * 32


@pytest.mark.parametrize(
    ("sender", "body", "status", "code"),
    [
        (CUSTOMER, "x" * (5 * 1024 * 1024), 413, "INBOUND_TOO_LARGE"),
        ("<script>alert(1)</script>", "hi", 400, "CALLBACK_INVALID"),
    ],
    ids=["5 MiB body", "markup as the sender"],
)
async def test_a_signed_inbound_message_ocm_cannot_keep_is_refused_and_nothing_stored(
    api: httpx.AsyncClient,
    deps: Deps,
    key: dict[str, str],
    peer: TwilioPeer,
    sender: str,
    body: str,
    status: int,
    code: str,
) -> None:
    """Security review, finding 7: a signed 5 MiB SMS body, and a ``<script>`` sender,
    were stored and fanned out to webhooks."""
    callback = await sms_channel(api, key, peer)
    signed = peer.incoming_message(callback, sender=sender, to=SENDER, body=body)
    answer = await post_callback(api, signed)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    await pump(deps)
    inbound = await api.get("/api/v1/messages", params={"direction": "inbound"}, headers=key)
    assert inbound.json()["items"] == []


async def test_a_short_code_may_text_a_number(
    api: httpx.AsyncClient, deps: Deps, key: dict[str, str], peer: TwilioPeer
) -> None:
    callback = await sms_channel(api, key, peer)
    signed = peer.incoming_message(callback, sender="72345", to=SENDER, body="STOP")
    assert (await post_callback(api, signed)).status_code == 200


async def test_behind_a_front_end_the_signature_covers_the_public_url(
    tmp_path: Path, peer: TwilioPeer
) -> None:
    public = "https://ocm.example.com"
    platform = bootstrap.build(Settings(OCM_DATA_DIR=tmp_path, OCM_PUBLIC_BASE_URL=public))
    transport = httpx.ASGITransport(app=create_app(lambda: platform))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.4") as api:
            key = {"X-API-Key": (await signup.create_tenant(platform, "acme")).api_key}
            callback = await sms_channel(api, key, peer)
            assert callback.startswith(f"{public}/api/v1/callbacks/twilio/")
            internal = callback.replace(public, "http://10.0.0.4")
            seen_inside = peer.incoming_message(internal, sender=CUSTOMER, to=SENDER, body="Hi")
            assert (await post_callback(api, seen_inside)).status_code == 401
            as_sent = peer.incoming_message(callback, sender=CUSTOMER, to=SENDER, body="Hi")
            assert (await post_callback(api, as_sent)).status_code == 200
            await pump(platform)
            inbound = await api.get(
                "/api/v1/messages", params={"direction": "inbound"}, headers=key
            )
            assert len(inbound.json()["items"]) == 1
    finally:
        for closer in platform.closers:
            closer()
