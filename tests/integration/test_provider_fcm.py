"""The FCM provider against a peer that follows FCM HTTP v1 and Google's token endpoint."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from shared.adapters.embedded.clock import SystemClock
from shared.adapters.providers.fcm import PROVIDER, FcmSender
from shared.adapters.providers.fcm_auth import SCOPE
from shared.domain.errors import ProviderError
from shared.ports import ProviderEnv, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.fcm import FcmPeer
from tests.support.pump import pump


@pytest.fixture
def peer() -> Iterator[FcmPeer]:
    with FcmPeer().running() as running:
        assert isinstance(running, FcmPeer)
        yield running


@pytest.fixture
def nowhere() -> FcmPeer:
    """A peer that is not running: its port is closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return FcmPeer(port=s.getsockname()[1])


@pytest.fixture
async def sender() -> AsyncIterator[FcmSender]:
    built = PROVIDER.build(ProviderEnv(clock=SystemClock(), allow_private_egress=True))
    assert isinstance(built, FcmSender)
    yield built
    await built.close()


def request(
    peer: FcmPeer,
    credentials: str,
    *,
    receiver: dict[str, str] | None = None,
    content: dict[str, Any] | None = None,
    **settings: Any,
) -> SendRequest:
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "receiver": receiver or {"type": "device", "address": "device-token-1"},
        "sender": None,
        "content": content or {"type": "push", "title": "Order", "body": "Shipped"},
    }
    channel = {
        "id": "ch_1",
        "tenant_id": "ten_1",
        "settings": {"base_url": peer.url, "token_uri": peer.token_uri, **settings},
    }
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel=channel,
        credentials={"service_account_json": credentials},
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def failure(sender: FcmSender, send: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await sender.send(send)
    return err.value


# -- sending ----------------------------------------------------------------------


async def test_a_push_goes_to_the_device_token_with_an_access_token_of_the_account(
    peer, sender
) -> None:
    account = peer.service_account("demo-project")
    content = {"type": "push", "title": "Order", "body": "Shipped", "data": {"order": "A-17"}}
    result = await sender.send(request(peer, account, content=content))
    assert result.provider_message_id == "projects/demo-project/messages/1"
    assert peer.sent == [
        {
            "token": "device-token-1",
            "notification": {"title": "Order", "body": "Shipped"},
            "data": {"order": "A-17"},
        }
    ]
    token_call, send_call = peer.requests
    assert token_call.path == "/token"
    assert send_call.path == "/v1/projects/demo-project/messages:send"
    assert send_call.headers["authorization"] == f"Bearer {next(iter(peer.tokens))}"


async def test_the_assertion_is_an_rs256_jwt_for_the_token_endpoint_with_the_fcm_scope(
    peer, sender
) -> None:
    account = peer.service_account("demo-project")
    await sender.send(request(peer, account))
    form = parse_qs(peer.requests[0].body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header = jwt.get_unverified_header(form["assertion"][0])
    assert (header["alg"], header["kid"]) == ("RS256", json.loads(account)["private_key_id"])
    [claims] = peer.assertions  # the peer verified its signature with the account's key
    assert claims["iss"] == json.loads(account)["client_email"]
    assert (claims["scope"], claims["aud"]) == (SCOPE, peer.token_uri)
    assert claims["exp"] - claims["iat"] == 3600


async def test_a_text_message_to_a_topic_is_a_notification_with_that_body(peer, sender) -> None:
    account = peer.service_account()
    topic = {"type": "topic", "address": "news"}
    await sender.send(
        request(peer, account, receiver=topic, content={"type": "text", "text": "Hi"})
    )
    assert peer.sent == [{"topic": "news", "notification": {"body": "Hi"}}]


async def test_platform_options_in_the_settings_go_with_every_message(peer, sender) -> None:
    account = peer.service_account()
    android = {"priority": "high", "ttl": "3600s"}
    apns = {"headers": {"apns-priority": "10"}}
    await sender.send(request(peer, account, android=android, apns=apns))
    assert peer.sent[0]["android"] == android
    assert peer.sent[0]["apns"] == apns
    assert "webpush" not in peer.sent[0]


async def test_the_access_token_is_reused_until_shortly_before_it_expires(peer, sender) -> None:
    account = peer.service_account()
    await sender.send(request(peer, account))
    await sender.send(request(peer, account))
    assert len(peer.assertions) == 1
    peer.expires_in = 300  # within the renewal margin: used once, then fetched anew
    other = peer.service_account()
    await sender.send(request(peer, other))
    await sender.send(request(peer, other))
    assert len(peer.assertions) == 3


async def test_a_refused_access_token_is_fetched_anew_once(peer, sender) -> None:
    account = peer.service_account()
    await sender.send(request(peer, account))
    peer.revoke_tokens()
    result = await sender.send(request(peer, account))
    assert result.provider_message_id == "projects/demo-project/messages/2"
    assert len(peer.assertions) == 2


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        ("UNREGISTERED", "permanent", "404"),
        ("INVALID_ARGUMENT", "permanent", "400"),
        ("SENDER_ID_MISMATCH", "permanent", "403"),
        ("THIRD_PARTY_AUTH_ERROR", "permanent", "401"),
        ("QUOTA_EXCEEDED", "throttled", "429"),
        ("UNAVAILABLE", "transient", "503"),
        ("INTERNAL", "transient", "500"),
    ],
)
async def test_fcm_error_codes_map_to_their_kind(peer, sender, code, kind, status) -> None:
    account = peer.service_account()
    peer.errors["device-token-1"] = code
    error = await failure(sender, request(peer, account))
    assert (error.kind, error.code, error.provider_status) == (kind, f"FCM_{code}", status)
    assert error.retry_after == (7.0 if status in ("429", "503") else None)
    assert peer.sent == []


async def test_an_unregistered_token_is_reported_as_gone(peer, sender) -> None:
    peer.errors["stale-token"] = "UNREGISTERED"
    stale = {"type": "device", "address": "stale-token"}
    error = await failure(sender, request(peer, peer.service_account(), receiver=stale))
    assert (error.kind, error.code) == ("permanent", "FCM_UNREGISTERED")
    assert error.reason == "Requested entity was not found."


async def test_an_account_the_token_endpoint_refuses_is_a_permanent_auth_failure(
    peer, sender
) -> None:
    account = peer.service_account()
    peer.accounts.clear()  # its key is unknown (deleted): the signature cannot verify
    error = await failure(sender, request(peer, account))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "FCM_AUTH_FAILED",
        "400",
    )
    assert "invalid_grant" in error.reason
    assert [r.path for r in peer.requests] == ["/token"]


async def test_an_invalid_grant_answer_is_a_permanent_auth_failure(peer, sender) -> None:
    peer.token_errors.append("invalid_grant")
    error = await failure(sender, request(peer, peer.service_account()))
    assert (error.kind, error.code) == ("permanent", "FCM_AUTH_FAILED")


async def test_an_access_token_refused_twice_is_a_permanent_auth_failure(peer, sender) -> None:
    peer.tokens = _Forgetful()  # every token it issues is unknown at once
    error = await failure(sender, request(peer, peer.service_account()))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "FCM_AUTH_FAILED",
        "401",
    )
    assert len(peer.assertions) == 2


class _Forgetful(dict[str, str]):
    def __setitem__(self, key: str, value: str) -> None:
        return None


@pytest.mark.parametrize(
    "key_file",
    [
        "not json",
        '["a list"]',
        '{"project_id": "p", "client_email": "a@p.iam.gserviceaccount.com"}',
        '{"project_id": "p", "client_email": "a@p", "private_key": "-----BEGIN nothing"}',
    ],
)
async def test_an_unusable_key_file_is_permanent_and_never_quoted(nowhere, sender, key_file):
    error = await failure(sender, request(nowhere, key_file))  # checked before connecting
    assert (error.kind, error.code) == ("permanent", "FCM_BAD_CREDENTIALS")
    assert key_file not in f"{error} {error.reason}"


async def test_a_closed_port_is_transient(nowhere, sender) -> None:
    error = await failure(sender, request(nowhere, nowhere.service_account()))
    assert (error.kind, error.code) == ("transient", "FCM_TOKEN_CONNECTION_FAILED")


async def test_private_destinations_are_refused_without_permission(peer) -> None:
    guarded = FcmSender(ProviderEnv(clock=SystemClock(), allow_private_egress=False))
    error = await failure(guarded, request(peer, peer.service_account()))
    await guarded.close()
    assert (error.kind, error.code) == ("permanent", "EGRESS_REFUSED")
    assert peer.requests == []


# -- through the API --------------------------------------------------------------


async def fcm_channel(api: httpx.AsyncClient, deps: Deps, peer: FcmPeer) -> dict[str, str]:
    """A tenant with an FCM push channel on the peer; its API key header."""
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    channel = await api.post(
        "/api/v1/channels",
        json={
            "name": "push",
            "type": "push",
            "provider": "fcm",
            "settings": {"base_url": peer.url, "token_uri": peer.token_uri},
        },
        headers=key,
    )
    assert channel.status_code == 201, channel.text
    stored = await api.put(
        "/api/v1/channels/push/credentials",
        json={"service_account_json": peer.service_account("acme-app")},
        headers=key,
    )
    assert stored.is_success, stored.text
    return key


async def send(api: httpx.AsyncClient, key: dict[str, str], token: str) -> dict[str, Any]:
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "push",
            "receiver": {"type": "device", "address": token},
            "content": {"type": "push", "title": "Order", "body": "Shipped", "data": {"n": "1"}},
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    return dict(accepted.json())


async def test_through_the_api_a_push_is_sent_and_sent_is_final(api, deps, peer) -> None:
    key = await fcm_channel(api, deps, peer)
    accepted = await send(api, key, "device-token-1")
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted['id']}", headers=key)).json()
    assert (message["status"], message["provider_message_id"]) == (
        "sent",
        "projects/acme-app/messages/1",
    )
    assert peer.sent[0]["token"] == "device-token-1"


async def test_through_the_api_an_unregistered_token_fails_the_message(api, deps, peer) -> None:
    key = await fcm_channel(api, deps, peer)
    peer.errors["stale-token"] = "UNREGISTERED"
    accepted = await send(api, key, "stale-token")
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{accepted['id']}", headers=key)).json()
    assert message["status"] == "failed"
    assert (message["error"]["code"], message["error"]["permanent"]) == ("FCM_UNREGISTERED", True)


async def test_through_the_api_fcm_takes_no_callbacks(api, deps, peer) -> None:
    key = await fcm_channel(api, deps, peer)
    channel = (await api.get("/api/v1/channels/push", headers=key)).json()
    answer = await api.post(f"/api/v1/callbacks/fcm/{channel['id']}", content=b"{}")
    assert answer.status_code == 404


async def test_through_the_api_unknown_settings_are_refused(api, deps) -> None:
    created = await signup.create_tenant(deps, "acme")
    answer = await api.post(
        "/api/v1/channels",
        json={"name": "push", "type": "push", "provider": "fcm", "settings": {"server_key": "x"}},
        headers={"X-API-Key": created.api_key},
    )
    assert answer.status_code == 422
