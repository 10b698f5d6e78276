"""Property: whatever a client sends, the answer is never a 5xx, and refused
requests store nothing. Drives the real app (SQLite backend) in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import bootstrap
from shared.api.app import create_app
from shared.config import Settings
from shared.containers import MESSAGES
from shared.ports import Query
from shared.services.deps import Deps
from shared.services.onboarding import signup

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
terminal = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["email", "phone", "alphanumeric", "url", "telegram", "x"]),
        "address": st.text(max_size=30) | st.sampled_from(["+4791234567", "bob@example.com"]),
    }
)
content = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "html", "media", "push", "template", "?"])},
    optional={"text": st.text(max_size=10), "html": st.text(max_size=10), "url": st.text()},
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["sandbox", "nope", ""]) | st.text(max_size=5),
        "receiver": terminal | json_values,
        "sender": terminal | json_values,
        "content": content | json_values,
        "options": st.dictionaries(
            st.sampled_from(["max_attempts", "expires_at", "sandbox"]), json_values
        ),
        "send_at": st.text(max_size=30) | st.sampled_from(["2030-01-01T00:00:00Z", "2030-01-01"]),
        "context": json_values,
        "tags": json_values,
    },
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Deps, str]]:
    # Hypothesis fires hundreds of requests a second with one key: no rate limit here.
    deps = bootstrap.build(
        Settings(OCM_DATA_DIR=Path(tmp_path_factory.mktemp("fuzz")), OCM_RATE_LIMIT_PER_SECOND=0)
    )

    with TestClient(create_app(lambda: deps), raise_server_exceptions=False) as client:
        created = client.portal.call(signup.create_tenant, deps, "fuzz")  # type: ignore[union-attr]
        client.headers["X-API-Key"] = created.api_key
        assert (
            client.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}).status_code
            == 201
        )
        yield client, deps, created.tenant["id"]
    for closer in deps.closers:
        closer()


def stored_count(client: TestClient, deps: Deps, tenant_id: str) -> int:
    page = client.portal.call(deps.store.query, MESSAGES, Query(scope=tenant_id, limit=10_000))  # type: ignore[union-attr]
    return len(page.items)


def assert_answer(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert isinstance(response.json()["code"], str)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=message_like | json_values)
def test_no_message_body_gets_a_5xx(api: tuple[TestClient, Deps, str], body: Any) -> None:
    client, deps, tenant_id = api
    before = stored_count(client, deps, tenant_id)
    response = client.post("/api/v1/messages", content=json.dumps(body))
    assert_answer(response)
    if response.status_code != 202:
        assert stored_count(client, deps, tenant_id) == before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(message_like | json_values, max_size=5), context=json_values)
def test_no_batch_gets_a_5xx(
    api: tuple[TestClient, Deps, str], items: list[Any], context: Any
) -> None:
    client, _, _ = api
    assert_answer(
        client.post(
            "/api/v1/messages/batch", content=json.dumps({"messages": items, "context": context})
        )
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=10),
            "type": st.sampled_from(["sandbox", "email", "x"]),
            "settings": json_values,
            "default_sender": terminal | json_values,
            "status": json_values,
        },
    )
    | json_values,
    raw=st.binary(max_size=40),
)
def test_no_channel_request_gets_a_5xx(
    api: tuple[TestClient, Deps, str], body: Any, raw: bytes
) -> None:
    client, _, _ = api
    assert_answer(client.post("/api/v1/channels", content=json.dumps(body)))
    assert_answer(client.patch("/api/v1/channels/sandbox", content=json.dumps(body)))
    assert_answer(client.put("/api/v1/channels/sandbox/credentials", content=json.dumps(body)))
    assert_answer(client.post("/api/v1/messages", content=raw))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(
        st.sampled_from(["status", "channel", "direction", "since", "until", "limit", "cursor"]),
        st.text(max_size=30),
    )
)
def test_no_list_query_gets_a_5xx(
    api: tuple[TestClient, Deps, str], params: dict[str, str]
) -> None:
    client, _, _ = api
    assert_answer(client.get("/api/v1/messages", params=params))


def test_json_nested_too_deeply_to_store_is_refused(api: tuple[TestClient, Deps, str]) -> None:
    client, _, _ = api
    deep = "[" * 400 + "]" * 400
    body = '{"channel": "sandbox", "receiver": {"type": "email", "address": "a@b.co"}, '
    body += '"content": {"type": "text", "text": "x"}, "context": {"deep": ' + deep + "}}"
    single = client.post("/api/v1/messages", content=body)
    assert single.status_code == 422
    assert single.json()["errors"][0]["field"] == "context"
    batch = client.post("/api/v1/messages/batch", content='{"messages": [' + body + "]}")
    assert batch.status_code == 202
    assert batch.json()["items"][0]["status"] == "rejected"
    shared_context = client.post(
        "/api/v1/messages/batch",
        content='{"messages": [' + body + '], "context": {"d": ' + deep + "}}",
    )
    assert shared_context.status_code == 422
    assert shared_context.json()["errors"][0]["field"] == "context"
    channel = '{"name": "deep", "type": "sandbox", "settings": {"d": ' + deep + "}}"
    keyed = client.post("/api/v1/channels", content=channel, headers={"Idempotency-Key": "k"})
    assert keyed.status_code == 422


async def test_a_client_that_hangs_up_mid_body_is_not_an_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deps = bootstrap.build(Settings(OCM_DATA_DIR=tmp_path))
    app = create_app(lambda: deps)

    created = await signup.create_tenant(deps, "gone")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/messages",
        "raw_path": b"/api/v1/messages",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-api-key", created.api_key.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 7071),
    }
    parts = [{"type": "http.request", "body": b'{"chan', "more_body": True}]

    async def receive() -> dict[str, Any]:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    answers: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    await app(scope, receive, send)
    assert answers[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    for closer in deps.closers:
        closer()


def test_context_and_template_data_nest_at_most_32_levels(
    api: tuple[TestClient, Deps, str],
) -> None:
    client, deps, tenant_id = api
    before = stored_count(client, deps, tenant_id)
    ok = {"d": [[[[1]]]]}
    deep = {"d": json.loads("[" * 40 + "]" * 40)}
    message = {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "a@b.co"},
        "content": {"type": "text", "text": "x"},
    }
    assert client.post("/api/v1/messages", json={**message, "context": ok}).status_code == 202
    refused = client.post("/api/v1/messages", json={**message, "context": deep})
    assert refused.status_code == 422
    template = {"type": "template", "template": "t", "data": deep}
    inbound = client.post(
        "/api/v1/channels/sandbox/simulate-inbound",
        json={"sender": {"type": "phone", "address": "+4791234567"}, "content": template},
    )
    assert inbound.status_code == 422
    batch = client.post("/api/v1/messages/batch", json={"messages": [message], "context": deep})
    assert batch.status_code == 422
    assert stored_count(client, deps, tenant_id) == before + 1


def test_a_batch_context_counts_towards_each_messages_size(
    api: tuple[TestClient, Deps, str],
) -> None:
    client, deps, tenant_id = api
    before = stored_count(client, deps, tenant_id)
    message = {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "a@b.co"},
        "content": {"type": "text", "text": "x"},
    }
    big = {"pad": "x" * (256 * 1024)}
    response = client.post(
        "/api/v1/messages/batch", json={"messages": [message] * 3, "context": big}
    )
    # A batch context past the bound every event needs refuses the whole batch.
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert stored_count(client, deps, tenant_id) == before


@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_times_that_overflow_in_utc_are_refused(
    api: tuple[TestClient, Deps, str], moment: str
) -> None:
    client, _, _ = api
    message = {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "a@b.co"},
        "content": {"type": "text", "text": "x"},
    }
    for field in ({"send_at": moment}, {"options": {"expires_at": moment}}):
        response = client.post("/api/v1/messages", json={**message, **field})
        assert response.status_code == 422, response.text
    assert client.get("/api/v1/messages", params={"since": moment}).status_code == 422
    batch = client.post(
        "/api/v1/messages/batch", json={"messages": [{**message, "send_at": moment}]}
    )
    assert batch.status_code == 202
    assert batch.json()["items"][0]["status"] == "rejected"


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_a_forged_cursor_is_a_400(api: tuple[TestClient, Deps, str], value: Any) -> None:
    import base64

    client, _, _ = api
    cursor = base64.urlsafe_b64encode(json.dumps(["created_at", value, "x"]).encode()).decode()
    for path in ("/api/v1/messages", "/api/v1/channels"):
        assert client.get(path, params={"cursor": cursor}).status_code == 400


RESOURCE_ROUTES = (
    "/api/v1/webhooks",
    "/api/v1/templates",
    "/api/v1/terminals",
    "/api/v1/opt-outs",
)
webhook_like = st.fixed_dictionaries(
    {},
    optional={
        "url": st.text(max_size=30) | st.sampled_from(["https://a..b/x", "http://[::1]:0/"]),
        "events": json_values | st.lists(st.sampled_from(["*", "message.*", "x.*", "message."])),
        "filters": json_values,
        "headers": json_values,
        "retry_schedule": json_values,
    },
)
template_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=10),
        "variables": json_values,
        "variants": st.dictionaries(
            st.sampled_from(["email", "sms", "default", "x"]),
            st.dictionaries(
                st.sampled_from(["text", "html", "subject", "title"]),
                st.text(max_size=20) | st.sampled_from(["{{ x", "{% for %}", "{{ ''.__class__ }}"]),
            ),
        ),
    },
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=webhook_like | template_like | json_values, route=st.sampled_from(RESOURCE_ROUTES))
def test_no_resource_create_gets_a_5xx(
    api: tuple[TestClient, Deps, str], body: Any, route: str
) -> None:
    client, _, _ = api
    assert_answer(client.post(route, content=json.dumps(body)))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    provider=st.sampled_from(["twilio", "meta", "telegram", "sendgrid", "sandbox", "nope"]),
    body=st.binary(max_size=200),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-twilio-signature",
                "x-hub-signature-256",
                "x-telegram-bot-api-secret-token",
                "x-twilio-email-event-webhook-signature",
                "x-twilio-email-event-webhook-timestamp",
                "content-type",
                "authorization",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_no_provider_callback_gets_a_5xx(
    api: tuple[TestClient, Deps, str],
    provider: str,
    body: bytes,
    headers: dict[str, str],
    method: str,
) -> None:
    client, _, _ = api
    channel = client.get("/api/v1/channels/sandbox").json()["id"]
    answer = client.request(
        method,
        f"/api/v1/callbacks/{provider}/{channel}",
        content=body,
        headers={**headers, "X-API-Key": ""},
    )
    assert answer.status_code < 500, answer.text


def _channel(
    client: TestClient, name: str, body: dict[str, Any], credentials: dict[str, str]
) -> str:
    """A channel of a real provider (made once per module), its id."""
    found = client.get(f"/api/v1/channels/{name}")
    if found.status_code == 200:
        return str(found.json()["id"])
    created = client.post("/api/v1/channels", json={"name": name, **body})
    assert created.status_code == 201, created.text
    assert client.put(f"/api/v1/channels/{name}/credentials", json=credentials).status_code == 204
    return str(created.json()["id"])


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=json_values
    | st.fixed_dictionaries({"object": st.just("whatsapp_business_account"), "entry": json_values})
    | st.fixed_dictionaries({"update_id": st.integers(), "message": json_values})
)
def test_no_signed_but_malformed_callback_gets_a_5xx(
    api: tuple[TestClient, Deps, str], payload: Any
) -> None:
    """Past the signature, the parsers meet whatever a provider (or a tenant's own
    endpoint posing as one) sends: a 4xx or 200, never a 5xx."""
    import hashlib
    import hmac

    client, _, _ = api
    meta = _channel(
        client,
        "wa",
        {"type": "whatsapp", "settings": {"phone_number_id": "1"}},
        {"access_token": "t", "app_secret": "s3cret", "verify_token": "v"},
    )
    telegram = _channel(
        client,
        "tg",
        {"type": "telegram"},
        {"bot_token": "1:abc", "webhook_secret": "hook-secret"},
    )
    body = json.dumps(payload).encode()
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    signed = client.post(
        f"/api/v1/callbacks/meta/{meta}",
        content=body,
        headers={"X-Hub-Signature-256": f"sha256={digest}", "X-API-Key": ""},
    )
    assert signed.status_code < 500, signed.text
    secret = client.post(
        f"/api/v1/callbacks/telegram/{telegram}",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret", "X-API-Key": ""},
    )
    assert secret.status_code < 500, secret.text
