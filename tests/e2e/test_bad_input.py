"""Bad input gets a 4xx problem with a stable code, and stores nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Client, Server

VALID = {
    "channel": "sandbox",
    "receiver": {"type": "phone", "address": "+4791234567"},
    "content": {"type": "text", "text": "hello"},
}


@pytest.fixture(scope="module")
def bad(server: Server) -> Client:
    tenant = server.tenant("bad-input")
    tenant.channel("sandbox")
    response = tenant.post(
        "/api/v1/channels",
        json={
            "name": "mail",
            "type": "email",
            "settings": {"host": "127.0.0.1", "port": 2525, "security": "none"},
            "default_sender": {"type": "email", "address": "noreply@acme.example"},
        },
    )
    assert response.status_code == 201, response.text
    return tenant


def count_messages(client: Client) -> int:
    return len(client.get("/api/v1/messages", params={"limit": 200}).json()["items"])


def problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert "Traceback" not in response.text
    return dict(body)


CASES = [
    ("malformed json", b'{"channel": "sandbox",', 400, "MALFORMED_JSON", None),
    ("not an object", b"[1, 2]", 422, "VALIDATION_FAILED", "body"),
    ("unknown channel", {**VALID, "channel": "nope"}, 404, "CHANNEL_NOT_FOUND", None),
    (
        "receiver type the channel cannot take",
        {**VALID, "channel": "mail", "receiver": {"type": "phone", "address": "+4791234567"}},
        422,
        "RECEIVER_NOT_SUPPORTED",
        "receiver.type",
    ),
    (
        "invalid email",
        {**VALID, "channel": "mail", "receiver": {"type": "email", "address": "bob@@example"}},
        422,
        "VALIDATION_FAILED",
        "receiver.address",
    ),
    (
        "invalid E.164 number",
        {**VALID, "receiver": {"type": "phone", "address": "+99912"}},
        422,
        "VALIDATION_FAILED",
        "receiver.address",
    ),
    (
        "content the channel cannot carry",
        {
            **VALID,
            "channel": "mail",
            "receiver": {"type": "email", "address": "bob@example.com"},
            "content": {"type": "push", "title": "hi"},
        },
        422,
        "CONTENT_NOT_SUPPORTED",
        "content.type",
    ),
    (
        "missing content",
        {k: v for k, v in VALID.items() if k != "content"},
        422,
        "VALIDATION_FAILED",
        "content",
    ),
    ("unknown field", {**VALID, "colour": "red"}, 422, "VALIDATION_FAILED", "colour"),
    (
        "unknown content type",
        {**VALID, "content": {"type": "hologram"}},
        422,
        "VALIDATION_FAILED",
        "content",
    ),
    (
        "expiry in the past",
        {**VALID, "options": {"expires_at": "2020-01-01T00:00:00Z"}},
        422,
        "MESSAGE_EXPIRED",
        "options.expires_at",
    ),
    (
        "naive time",
        {**VALID, "send_at": "2030-01-01T00:00:00"},
        422,
        "VALIDATION_FAILED",
        "send_at",
    ),
    (
        "a message over 256 KiB",
        {**VALID, "context": {"pad": "x" * 270_000}},
        413,
        "MESSAGE_TOO_LARGE",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_messages_are_refused_with_a_problem_and_nothing_is_stored(
    bad: Client, name: str, body: object, status: int, code: str, field: str | None
) -> None:
    before = count_messages(bad)
    if isinstance(body, bytes):
        response = bad.post(
            "/api/v1/messages", content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = bad.post("/api/v1/messages", json=body)
    payload = problem(response, status, code)
    if field is not None:
        assert field in [e["field"] for e in payload["errors"]], payload
    assert count_messages(bad) == before


def test_a_request_over_10_mib_is_refused(bad: Client) -> None:
    response = bad.post(
        "/api/v1/messages/batch",
        content=b'{"messages": ["' + b"x" * (10 * 1024 * 1024 + 10) + b'"]}',
        headers={"Content-Type": "application/json"},
    )
    problem(response, 413, "REQUEST_TOO_LARGE")


def test_a_batch_over_1000_is_refused_whole(bad: Client) -> None:
    before = count_messages(bad)
    response = bad.post("/api/v1/messages/batch", json={"messages": [VALID] * 1001})
    problem(response, 413, "BATCH_TOO_LARGE")
    assert count_messages(bad) == before


def test_a_malformed_batch_is_refused(bad: Client) -> None:
    problem(bad.post("/api/v1/messages/batch", json={"messages": []}), 422, "VALIDATION_FAILED")
    problem(bad.post("/api/v1/messages/batch", json={"items": [VALID]}), 422, "VALIDATION_FAILED")


def test_bad_channels_are_refused(bad: Client) -> None:
    problem(
        bad.post("/api/v1/channels", json={"name": "Bad Name!", "type": "sandbox"}),
        422,
        "VALIDATION_FAILED",
    )
    problem(
        bad.post("/api/v1/channels", json={"name": "x", "type": "carrier-pigeon"}),
        422,
        "CHANNEL_TYPE_UNKNOWN",
    )
    problem(
        bad.post(
            "/api/v1/channels", json={"name": "m2", "type": "email", "settings": {"port": 25}}
        ),
        422,
        "VALIDATION_FAILED",
    )
    problem(
        bad.post("/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}),
        409,
        "CHANNEL_NAME_TAKEN",
    )
    problem(
        bad.request("PUT", "/api/v1/channels/mail/credentials", json={"token": "x"}),
        422,
        "VALIDATION_FAILED",
    )
    problem(bad.request("GET", "/api/v1/messages/msg_nope"), 404, "MESSAGE_NOT_FOUND")
    problem(bad.get("/api/v1/messages", params={"status": "lost"}), 422, "VALIDATION_FAILED")
    problem(bad.get("/api/v1/messages", params={"cursor": "!!"}), 400, "INVALID_CURSOR")
    problem(bad.get("/api/v1/nowhere"), 404, "NOT_FOUND")


def test_credentials_are_write_only(bad: Client) -> None:
    response = bad.request(
        "PUT",
        "/api/v1/channels/mail/credentials",
        json={"username": "u", "password": "hunter2-secret"},
    )
    assert response.status_code == 204
    channel = bad.get("/api/v1/channels/mail")
    assert channel.json()["has_credentials"] is True
    assert "hunter2-secret" not in channel.text
    assert "hunter2-secret" not in bad.get("/api/v1/channels").text
    assert "hunter2-secret" not in bad.server.log()
    raw = (bad.server.data_dir / "ocm.sqlite3").read_bytes()
    assert b"hunter2-secret" not in raw


def test_requests_without_a_valid_key_are_refused(server: Server, bad: Client) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        missing = anonymous.get("/api/v1/messages")
        problem(missing, 401, "CREDENTIALS_MISSING")
        assert missing.headers["www-authenticate"].startswith("ApiKey")
        wrong = anonymous.get("/api/v1/messages", headers={"X-API-Key": bad.api_key[:-4] + "AAAA"})
        problem(wrong, 401, "INVALID_CREDENTIALS")
        junk = anonymous.get("/api/v1/messages", headers={"X-API-Key": "hello"})
        problem(junk, 401, "INVALID_CREDENTIALS")


def test_another_tenants_resources_answer_404(server: Server, bad: Client) -> None:
    other = server.tenant("other")
    mine = bad.send()
    problem(other.get(f"/api/v1/messages/{mine['id']}"), 404, "MESSAGE_NOT_FOUND")
    problem(other.post(f"/api/v1/messages/{mine['id']}/cancel"), 404, "MESSAGE_NOT_FOUND")
    problem(other.get("/api/v1/channels/mail"), 404, "CHANNEL_NOT_FOUND")
    assert other.get("/api/v1/messages").json()["items"] == []
    assert other.get("/api/v1/channels").json()["items"] == []
    problem(other.post("/api/v1/messages", json=VALID), 404, "CHANNEL_NOT_FOUND")
