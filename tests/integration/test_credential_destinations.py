"""Write-only credentials stay write-only (security review, finding 3).

Whoever may change a channel (``update:channel``, the developer role) could PATCH its
``base_url`` or SMTP host to a server of theirs and send one message: the stored Twilio
token, SMTP password, Meta or SendGrid bearer, Telegram bot token or FCM assertion went
there. Moving a channel now drops its credentials; production refuses plain-text
destinations; and an endpoint echoing the request cannot put a credential, in any
encoding, into the error text the viewer role may read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.base import Peer
from tests.peers.twilio import TwilioPeer
from tests.support.pump import pump

SENDER, RECEIVER = "+15005550006", "+4791234567"


class EchoPeer(Peer):
    """Answers every request 400, echoing its Authorization header and path back as an
    API error (as misconfigured proxies and some test endpoints do)."""

    def routes(self, app: web.Application) -> None:
        async def echo(request: web.Request) -> web.Response:
            said = f"{request.headers.get('Authorization')} at {request.path_qs}"
            return web.json_response({"code": 20003, "message": said}, status=400)

        app.router.add_route("*", "/{tail:.*}", echo)


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    peer = TwilioPeer()
    with peer.running():
        yield peer


@pytest.fixture
def attacker() -> Iterator[EchoPeer]:
    peer = EchoPeer()
    with peer.running():
        yield peer


@pytest.fixture
async def key(deps: Deps) -> dict[str, str]:
    return {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}


async def _twilio_channel(
    api: httpx.AsyncClient, key: dict[str, str], base_url: str, credentials: dict[str, str]
) -> None:
    channel = {
        "name": "sms",
        "type": "sms",
        "provider": "twilio",
        "settings": {"base_url": base_url},
        "default_sender": {"type": "phone", "address": SENDER},
    }
    assert (await api.post("/api/v1/channels", json=channel, headers=key)).status_code == 201
    put = await api.put("/api/v1/channels/sms/credentials", json=credentials, headers=key)
    assert put.status_code == 204, put.text


async def _send(api: httpx.AsyncClient, deps: Deps, key: dict[str, str]) -> dict[str, Any]:
    message = {
        "channel": "sms",
        "receiver": {"type": "phone", "address": RECEIVER},
        "content": {"type": "text", "text": "hi"},
    }
    accepted = await api.post("/api/v1/messages", json=message, headers=key)
    assert accepted.status_code == 202, accepted.text
    await pump(deps)
    got = await api.get(f"/api/v1/messages/{accepted.json()['id']}", headers=key)
    body: dict[str, Any] = got.json()
    return body


def _every_form(peer: TwilioPeer) -> list[str]:
    pair = f"{peer.account_sid}:{peer.auth_token}".encode()
    return [peer.auth_token, base64.b64encode(pair).decode()]


async def test_moving_a_channel_drops_its_credentials_before_they_reach_the_new_host(
    api: httpx.AsyncClient,
    deps: Deps,
    key: dict[str, str],
    twilio: TwilioPeer,
    attacker: EchoPeer,
) -> None:
    await _twilio_channel(api, key, twilio.url, twilio.credentials)
    moved = await api.patch(
        "/api/v1/channels/sms", json={"settings": {"base_url": attacker.url}}, headers=key
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["has_credentials"] is False
    await _send(api, deps, key)
    seen = repr([(r.headers, r.path, r.query, r.body) for r in attacker.requests])
    assert all(form not in seen for form in _every_form(twilio))
    audit = (
        await api.get("/api/v1/audit", params={"action": "channel.credentials.drop"}, headers=key)
    ).json()
    assert [r["target"]["because"] for r in audit["items"]] == [["settings.base_url"]]


async def test_a_change_elsewhere_keeps_the_credentials(
    api: httpx.AsyncClient, key: dict[str, str], twilio: TwilioPeer
) -> None:
    await _twilio_channel(api, key, twilio.url, twilio.credentials)
    changed = await api.patch(
        "/api/v1/channels/sms",
        json={"settings": {"base_url": twilio.url, "status_callback_url": "https://x.test/cb"}},
        headers=key,
    )
    assert changed.json()["has_credentials"] is True


@pytest.mark.parametrize(
    "change", [{"host": "elsewhere.example"}, {"port": 2525}, {"security": "ssl"}]
)
async def test_moving_an_smtp_channel_anywhere_drops_its_password(
    api: httpx.AsyncClient, key: dict[str, str], change: dict[str, Any]
) -> None:
    channel = {"name": "mail", "type": "email", "provider": "smtp"}
    channel["settings"] = {"host": "smtp.example.com"}  # type: ignore[assignment]
    assert (await api.post("/api/v1/channels", json=channel, headers=key)).status_code == 201
    credentials = {"username": "u", "password": "a-long-smtp-password"}
    await api.put("/api/v1/channels/mail/credentials", json=credentials, headers=key)
    moved = await api.patch("/api/v1/channels/mail", json={"settings": change}, headers=key)
    assert moved.json()["has_credentials"] is False


def test_every_provider_with_credentials_says_where_they_are_sent(deps: Deps) -> None:
    """Apprise's credential is the destination URL itself; Web Push's VAPID key signs
    for the receiver's push service and never leaves OCM."""
    for spec in deps.catalog:
        if spec.credentials and spec.provider not in ("apprise", "webpush"):
            assert spec.destination, spec.provider
        assert set(spec.destination) <= set(spec.settings.model_fields), spec.provider


async def test_an_echoed_credential_is_masked_in_every_encoding(
    api: httpx.AsyncClient,
    deps: Deps,
    key: dict[str, str],
    twilio: TwilioPeer,
    attacker: EchoPeer,
) -> None:
    """An endpoint that echoes the request's ``Authorization: Basic <base64>`` in its
    error: the stored reason (read:message, the viewer role) keeps none of it."""
    await _twilio_channel(api, key, attacker.url, twilio.credentials)
    message = await _send(api, deps, key)
    reason = message["error"]["reason"]
    assert "Basic ***" in reason
    assert all(form not in repr(message) for form in _every_form(twilio))


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        (
            {"type": "sms", "provider": "twilio", "settings": {"base_url": "http://api.example"}},
            "settings.base_url",
        ),
        (
            {
                "type": "email",
                "provider": "smtp",
                "settings": {"host": "smtp.example.com", "security": "none"},
            },
            "settings.security",
        ),
    ],
)
async def test_production_refuses_destinations_that_would_carry_credentials_in_clear(
    production: tuple[httpx.AsyncClient, dict[str, str]], channel: dict[str, Any], field: str
) -> None:
    api, key = production
    answer = await api.post("/api/v1/channels", json={"name": "c", **channel}, headers=key)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "CHANNEL_DESTINATION_NOT_ENCRYPTED"
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    safe = {**channel["settings"], "base_url": "https://api.example", "security": "starttls"}
    safe = {k: v for k, v in safe.items() if k in channel["settings"]}
    created = await api.post(
        "/api/v1/channels", json={"name": "c", **channel, "settings": safe}, headers=key
    )
    assert created.status_code == 201, created.text
    moved = await api.patch(
        "/api/v1/channels/c", json={"settings": channel["settings"]}, headers=key
    )
    assert moved.json()["code"] == "CHANNEL_DESTINATION_NOT_ENCRYPTED"
