"""The Web Push provider against a push service peer, with the browser's side played
by the test: it holds the subscription's key pair and auth secret, and decrypts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.adapters.embedded.clock import SystemClock
from shared.adapters.providers.webpush import PROVIDER, WebPushSender
from shared.adapters.providers.webpush_crypto import PushSubscription, encrypt
from shared.domain.errors import ProviderError
from shared.ports import ProviderEnv, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.webpush import (
    SUBJECT,
    Browser,
    Vapid,
    WebPushPeer,
    b64url,
    b64url_decode,
    public_point,
)
from tests.support.pump import pump


@pytest.fixture
def peer() -> Iterator[WebPushPeer]:
    with WebPushPeer().running() as running:
        assert isinstance(running, WebPushPeer)
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[WebPushSender]:
    built = PROVIDER.build(ProviderEnv(clock=SystemClock(), allow_private_egress=True))
    assert isinstance(built, WebPushSender)
    yield built
    await built.close()


@pytest.fixture
def vapid() -> Vapid:
    return Vapid.generate()


def request(
    address: str,
    credentials: dict[str, str],
    *,
    content: dict[str, Any] | None = None,
    key: str = "msg_01",
    **settings: Any,
) -> SendRequest:
    message = {
        "id": key,
        "tenant_id": "ten_1",
        "receiver": {"type": "device", "address": address},
        "sender": None,
        "content": content or {"type": "push", "title": "Order", "body": "Shipped"},
    }
    channel = {"id": "ch_1", "tenant_id": "ten_1", "settings": settings}
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel=channel,
        credentials=credentials,
        attempt=1,
        throttles=0,
        idempotency_key=key,
    )


async def failure(sender: WebPushSender, send: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await sender.send(send)
    return err.value


# -- RFC 8291's example ----------------------------------------------------------

RFC8291 = {  # Appendix A, verbatim
    "plaintext": b"When I grow up, I want to be a watermelon",
    "as_private": "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "ua_public": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-"
    "AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
    "salt": "DGv6ra1nlYgDCS1FRnbzlw",
    "auth_secret": "BTBZMqHH6r4Tts7J_aSIgg",
    "message": "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
}


def _private_key(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(text), "big"), ec.SECP256R1())


def test_the_rfc_8291_example_encrypts_to_the_documented_message() -> None:
    subscription = PushSubscription(
        "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
        b64url_decode(RFC8291["ua_public"]),
        b64url_decode(RFC8291["auth_secret"]),
    )
    body = encrypt(
        RFC8291["plaintext"],
        subscription,
        ephemeral=_private_key(RFC8291["as_private"]),
        salt=b64url_decode(RFC8291["salt"]),
    )
    assert b64url(body) == RFC8291["message"]


def test_the_browser_side_decrypts_the_rfc_8291_example_and_refuses_a_tampered_one() -> None:
    browser = Browser(
        "x", _private_key(RFC8291["ua_private"]), b64url_decode(RFC8291["auth_secret"])
    )
    body = b64url_decode(RFC8291["message"])
    plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth)
    assert plain == RFC8291["plaintext"]
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(tampered, private_key=browser.key, auth_secret=browser.auth)


# -- sending ----------------------------------------------------------------------


async def test_a_push_arrives_encrypted_and_only_the_browser_can_read_it(
    peer, sender, vapid
) -> None:
    browser = Browser.subscribe(peer, vapid)
    content = {"type": "push", "title": "Order", "body": "Shipped", "data": {"order": "A-17"}}
    result = await sender.send(request(browser.subscription, vapid.credentials(), content=content))
    [pushed] = peer.messages
    assert result.provider_message_id == pushed.location
    assert browser.decrypt(pushed.body) == {
        "title": "Order",
        "body": "Shipped",
        "data": {"order": "A-17"},
    }
    assert b"Shipped" not in pushed.body
    stranger = Browser(browser.endpoint, ec.generate_private_key(ec.SECP256R1()), browser.auth)
    with pytest.raises(http_ece.ECEException):
        stranger.decrypt(pushed.body)


async def test_the_request_carries_ttl_urgency_and_the_aes128gcm_encoding(
    peer, sender, vapid
) -> None:
    browser = Browser.subscribe(peer, vapid)
    await sender.send(request(browser.subscription, vapid.credentials()))
    [call] = peer.requests
    assert call.method == "POST"
    assert call.path == "/push/" + browser.endpoint.rsplit("/", 1)[1]
    assert (call.headers["ttl"], call.headers["urgency"]) == ("86400", "normal")
    assert call.headers["content-encoding"] == "aes128gcm"
    assert call.headers["content-type"] == "application/octet-stream"
    await sender.send(
        request(
            browser.subscription, vapid.credentials(), key="msg_02", ttl_seconds=60, urgency="high"
        )
    )
    assert (peer.messages[1].ttl, peer.messages[1].urgency) == (60, "high")


async def test_the_vapid_token_is_es256_for_the_endpoint_origin_and_k_is_its_key(
    peer, sender, vapid
) -> None:
    browser = Browser.subscribe(peer, vapid)
    await sender.send(request(browser.subscription, vapid.credentials()))
    scheme, _, params = peer.requests[0].headers["authorization"].partition(" ")
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert scheme == "vapid"
    assert b64url_decode(fields["k"]) == vapid.public
    claims = jwt.decode(
        fields["t"], vapid.key.public_key(), algorithms=["ES256"], audience=peer.url
    )
    assert claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    head, body, signature = fields["t"].split(".")
    forged = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BA'}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, vapid.key.public_key(), algorithms=["ES256"], audience=peer.url)


async def test_a_text_message_arrives_as_a_body(peer, sender, vapid) -> None:
    browser = Browser.subscribe(peer, vapid)
    text = {"type": "text", "text": "Your code is 1234"}
    await sender.send(request(browser.subscription, vapid.credentials(), content=text))
    assert browser.decrypt(peer.messages[0].body) == {"body": "Your code is 1234"}


async def test_a_resent_message_replaces_its_undelivered_copy(peer, sender, vapid) -> None:
    browser = Browser.subscribe(peer, vapid)
    await sender.send(request(browser.subscription, vapid.credentials(), key="msg_01"))
    await sender.send(request(browser.subscription, vapid.credentials(), key="msg_01"))
    assert len(peer.messages) == 1
    await sender.send(request(browser.subscription, vapid.credentials(), key="msg_02"))
    assert len(peer.messages) == 2


async def test_a_key_other_than_the_subscription_s_is_refused_as_vapid(peer, sender, vapid):
    browser = Browser.subscribe(peer, vapid)
    error = await failure(sender, request(browser.subscription, Vapid.generate().credentials()))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "WEBPUSH_VAPID_REJECTED",
        "403",
    )
    assert peer.messages == []


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (413, "permanent", "WEBPUSH_PAYLOAD_TOO_LARGE"),
        (400, "permanent", "WEBPUSH_HTTP_400"),
        (401, "permanent", "WEBPUSH_VAPID_REJECTED"),
        (429, "throttled", "WEBPUSH_THROTTLED"),
        (500, "transient", "WEBPUSH_HTTP_500"),
        (503, "transient", "WEBPUSH_HTTP_503"),
    ],
)
async def test_push_service_answers_map_to_their_kind(peer, sender, vapid, status, kind, code):
    browser = Browser.subscribe(peer, vapid)
    peer.fail_next.append(status)
    error = await failure(sender, request(browser.subscription, vapid.credentials()))
    assert (error.kind, error.code, error.provider_status) == (kind, code, str(status))
    assert error.retry_after == (7.0 if status in (429, 503) else None)


async def test_an_unsubscribed_or_unknown_subscription_is_gone(peer, sender, vapid) -> None:
    browser = Browser.subscribe(peer, vapid)
    peer.unsubscribe(browser.endpoint)
    error = await failure(sender, request(browser.subscription, vapid.credentials()))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "WEBPUSH_SUBSCRIPTION_GONE",
        "410",
    )
    unknown = Browser(f"{peer.url}/push/never-issued", browser.key, browser.auth)
    error = await failure(sender, request(unknown.subscription, vapid.credentials()))
    assert (error.code, error.provider_status) == ("WEBPUSH_SUBSCRIPTION_GONE", "404")


def _subscription(**changes: Any) -> str:
    keys = {
        "p256dh": b64url(public_point(ec.generate_private_key(ec.SECP256R1()))),
        "auth": b64url(b"0123456789abcdef"),
    }
    value: dict[str, Any] = {"endpoint": "https://push.example.net/push/abc", "keys": keys}
    value.update(changes)
    return json.dumps(value)


@pytest.mark.parametrize(
    "address",
    [
        "device-token-not-json",
        "[1, 2]",
        json.dumps({"endpoint": "https://push.example.net/push/abc"}),
        _subscription(keys={"p256dh": "AAAA", "auth": b64url(b"0123456789abcdef")}),
        _subscription(keys={"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": "AAAA"}),
        _subscription(endpoint="ftp://push.example.net/push/abc"),
        _subscription(endpoint="https://user:pw@push.example.net/push/abc"),
        _subscription(endpoint=42),
    ],
)
async def test_a_receiver_that_is_not_a_push_subscription_is_permanent(sender, vapid, address):
    error = await failure(sender, request(address, vapid.credentials()))
    assert (error.kind, error.code) == ("permanent", "WEBPUSH_BAD_SUBSCRIPTION")


async def test_plain_http_endpoints_are_refused_outside_development(vapid) -> None:
    guarded = WebPushSender(ProviderEnv(clock=SystemClock(), allow_private_egress=False))
    address = _subscription(endpoint="http://push.example.net/push/abc")
    error = await failure(guarded, request(address, vapid.credentials()))
    await guarded.close()
    assert (error.kind, error.code) == ("permanent", "WEBPUSH_BAD_SUBSCRIPTION")


async def test_private_destinations_are_refused_without_permission(vapid) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    guarded = WebPushSender(ProviderEnv(clock=SystemClock(), allow_private_egress=False))
    address = _subscription(endpoint=f"https://127.0.0.1:{port}/push/abc")
    error = await failure(guarded, request(address, vapid.credentials()))
    await guarded.close()
    assert (error.kind, error.code) == ("permanent", "EGRESS_REFUSED")


async def test_a_payload_too_large_for_one_record_is_refused_before_sending(sender, vapid):
    content = {"type": "push", "title": "Big", "body": "x" * 3990}
    error = await failure(sender, request(_subscription(), vapid.credentials(), content=content))
    assert (error.kind, error.code) == ("permanent", "WEBPUSH_PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"vapid_private_key": "c2hvcnQ", "vapid_subject": SUBJECT}, "WEBPUSH_BAD_VAPID_KEY"),
        (
            {"vapid_private_key": b64url(b"\xff" * 32), "vapid_subject": SUBJECT},
            "WEBPUSH_BAD_VAPID_KEY",
        ),
        (
            {"vapid_private_key": RFC8291["as_private"], "vapid_subject": "admin@acme.example"},
            "WEBPUSH_BAD_VAPID_SUBJECT",
        ),
    ],
)
async def test_unusable_vapid_credentials_are_permanent_and_never_quoted(sender, credentials, code):
    error = await failure(sender, request(_subscription(), credentials))
    assert (error.kind, error.code) == ("permanent", code)
    assert credentials["vapid_private_key"] not in f"{error} {error.reason}"


# -- through the API --------------------------------------------------------------


async def webpush_channel(api: httpx.AsyncClient, deps: Deps, vapid: Vapid) -> dict[str, str]:
    """A tenant with a Web Push channel; its API key header."""
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    channel = await api.post(
        "/api/v1/channels",
        json={
            "name": "browser",
            "type": "push",
            "provider": "webpush",
            "settings": {"ttl_seconds": 3600, "urgency": "high"},
        },
        headers=key,
    )
    assert channel.status_code == 201, channel.text
    stored = await api.put(
        "/api/v1/channels/browser/credentials", json=vapid.credentials(), headers=key
    )
    assert stored.is_success, stored.text
    return key


async def send(api: httpx.AsyncClient, key: dict[str, str], browser: Browser) -> dict[str, Any]:
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "browser",
            "receiver": {"type": "device", "address": browser.subscription},
            "content": {"type": "push", "title": "Order", "body": "Shipped"},
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    return dict(accepted.json())


async def test_through_the_api_a_push_reaches_the_browser(api, deps, peer, vapid) -> None:
    key = await webpush_channel(api, deps, vapid)
    browser = Browser.subscribe(peer, vapid)
    accepted = await send(api, key, browser)
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted['id']}", headers=key)).json()
    [pushed] = peer.messages
    assert (message["status"], message["provider_message_id"]) == ("sent", pushed.location)
    assert (pushed.ttl, pushed.urgency) == (3600, "high")
    assert browser.decrypt(pushed.body) == {"title": "Order", "body": "Shipped"}


async def test_through_the_api_a_gone_subscription_fails_the_message(api, deps, peer, vapid):
    key = await webpush_channel(api, deps, vapid)
    browser = Browser.subscribe(peer, vapid)
    peer.unsubscribe(browser.endpoint)
    accepted = await send(api, key, browser)
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted['id']}", headers=key)).json()
    assert message["status"] == "failed"
    assert (message["error"]["code"], message["error"]["permanent"]) == (
        "WEBPUSH_SUBSCRIPTION_GONE",
        True,
    )


async def test_through_the_api_webpush_takes_no_callbacks(api, deps, vapid) -> None:
    key = await webpush_channel(api, deps, vapid)
    channel = (await api.get("/api/v1/channels/browser", headers=key)).json()
    answer = await api.post(f"/api/v1/callbacks/webpush/{channel['id']}", content=b"{}")
    assert answer.status_code == 404
