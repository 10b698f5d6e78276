"""What every answer keeps (security review, finding 9): ``nosniff`` on every answer
(Meta's echoed ``hub.challenge`` included); no input echoed back at length (a 404 for a
100 KB channel name answered 200 KB); no URL shaped by the client's ``Host`` header
in production."""

from __future__ import annotations

import httpx
import pytest

from shared.services.deps import Deps
from shared.services.onboarding import signup

TWILIO = {"name": "sms", "type": "sms", "provider": "twilio"}


@pytest.fixture
async def key(deps: Deps) -> dict[str, str]:
    return {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}


async def test_every_kind_of_answer_says_nosniff(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    await api.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key)
    message = {
        "channel": "sandbox",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
    }
    answers = [
        await api.get("/api/health"),
        await api.get("/api/v1/channels", headers=key),
        await api.get("/api/v1/channels"),  # 401
        await api.get("/api/v1/channels/nothing", headers=key),  # 404
        await api.post("/api/v1/messages", json=message, headers=key),  # the direct route
        await api.post("/api/v1/messages", content=b"{", headers=key),  # 400 on it
        await api.get("/api/openapi.json"),
    ]
    assert [a.headers.get("x-content-type-options") for a in answers] == ["nosniff"] * 7


async def test_a_long_input_is_not_echoed_back_at_length(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    name = "a" * 60_000  # httpx sends at most 64 KiB of URL
    answer = await api.get(f"/api/v1/channels/{name}", headers=key)
    assert answer.status_code == 404
    assert len(answer.content) < 2_000
    assert answer.json()["detail"].endswith("…")


async def test_in_production_the_host_header_does_not_shape_the_callback_url(
    production: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    api, key = production
    headers = {**key, "Host": "evil.example"}
    created = await api.post("/api/v1/channels", json=TWILIO, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json().get("callback_url") is None
    shown = await api.get("/api/v1/channels/sms", headers=headers)
    assert "evil.example" not in shown.text


async def test_locally_the_callback_url_is_where_the_platform_was_reached(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    created = await api.post("/api/v1/channels", json=TWILIO, headers=key)
    assert created.json()["callback_url"].startswith("http://ocm/api/v1/callbacks/twilio/")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/apps", b'{"name": "dup", "name": "dup2", "scopes": ["send:message"]}'),
        ("/api/v1/channels", b'{"name": "a", "type": "sandbox", "settings": {"x": 1, "x": 2}}'),
        ("/api/v1/messages", b'{"channel": "sandbox", "channel": "other", "receiver": {}}'),
        ("/api/v1/messages/batch", b'{"messages": [{"tags": [], "content": {"a": 1, "a": 2}}]}'),
    ],
)
async def test_a_body_naming_a_key_twice_is_refused(
    api: httpx.AsyncClient, key: dict[str, str], path: str, body: bytes
) -> None:
    """Security review, finding 9: ``{"name":"dup","name":"dup2"}`` created ``dup2``;
    a proxy reading the first would have seen another request."""
    for content_type in ("application/json", "text/plain"):  # the send routes read any
        headers = {**key, "Content-Type": content_type}
        answer = await api.post(path, content=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "JSON_DUPLICATE_KEY"
    listed = await api.get("/api/v1/apps", headers=key)
    assert "dup" not in [a["name"] for a in listed.json()["items"]]


async def test_the_same_key_in_different_objects_is_fine(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    body = b'{"name": "crm", "scopes": ["send:message"], "description": "{\\"name\\": 1}"}'
    answer = await api.post(
        "/api/v1/apps", content=body, headers={**key, "Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.text
