"""Hygiene through a whole run of `ocm serve` at DEBUG: no API key, client secret,
access token or provider credential ever reaches the log or an error answer; CORS is
closed by default."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server, serving
from tests.peers.apprise_peers import WebhookPeer


@pytest.fixture(scope="module")
def loud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory, "ocm-loud", OCM_LOG_LEVEL="DEBUG")


def test_no_secret_reaches_the_log_or_an_error_answer(loud: Server) -> None:
    acme = loud.tenant("hygiene")
    secrets = [acme.api_key]
    answers: list[str] = []

    def call(method: str, path: str, key: str | None = None, **kwargs: object) -> httpx.Response:
        headers = {"X-API-Key": key or acme.api_key}
        with httpx.Client(base_url=loud.url, timeout=30) as http:
            answer = http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        if answer.status_code >= 400:
            answers.append(answer.text)
        return answer

    call("POST", "/api/v1/channels", json={"name": "sandbox", "type": "sandbox"})
    password = "s3cr3t-smtp-password-for-hygiene"
    call(
        "POST",
        "/api/v1/channels",
        json={
            "name": "mail",
            "type": "email",
            "provider": "smtp",
            "settings": {"host": "127.0.0.1", "port": 1, "security": "none"},
            "default_sender": {"type": "email", "address": "noreply@example.com"},
        },
    )
    call("PUT", "/api/v1/channels/mail/credentials", json={"username": "u", "password": password})
    secrets.append(password)
    app = call("POST", "/api/v1/apps", json={"name": "crm", "scopes": ["send:message"]}).json()
    secrets.append(app["api_key"])
    rotated = call("POST", f"/api/v1/apps/{app['app']['id']}/keys/secondary").json()
    secrets.append(rotated["api_key"])
    client = call("POST", f"/api/v1/apps/{app['app']['id']}/client-secret").json()
    secrets.append(client["client_secret"])
    with httpx.Client(base_url=loud.url, timeout=30) as http:
        token = http.post(
            "/api/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
        ).json()["access_token"]
        secrets.append(token)
        answers.append(
            http.get("/api/v1/messages", headers={"Authorization": f"Bearer {token}"}).text
        )
        wrong = http.post(
            "/api/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": "ocs_" + "x" * 43,
            },
        )
        answers.append(wrong.text)
    # A user: invitation, password, sign-in, refresh, a wrong password.
    user_password = "hygiene-user-password-123"
    invited = call("POST", "/api/v1/users", json={"email": "h@example.com", "role": "viewer"})
    invitation = invited.json()["invitation_token"]
    with httpx.Client(base_url=loud.url, timeout=30) as http:
        http.post(
            "/api/v1/users/accept-invite", json={"token": invitation, "password": user_password}
        )
        pair = http.post(
            "/api/v1/auth/login", json={"email": "h@example.com", "password": user_password}
        ).json()
        renewed = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        wrong_login = http.post(
            "/api/v1/auth/login", json={"email": "h@example.com", "password": user_password + "x"}
        )
        answers.append(wrong_login.text)
        replay = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        answers.append(replay.text)
    secrets += [
        user_password,
        invitation,
        pair["access_token"],
        pair["refresh_token"],
        renewed.json()["refresh_token"],
    ]
    # Failures that log: a send through the unreachable SMTP server, bad keys.
    sent = call(
        "POST",
        "/api/v1/messages",
        json={
            "channel": "mail",
            "receiver": {"type": "email", "address": "bob@example.com"},
            "sender": {"type": "email", "address": "noreply@example.com"},
            "subject": "s",
            "content": {"type": "text", "text": "t"},
            "options": {"max_attempts": 1},
        },
    ).json()
    assert "id" in sent, sent.get("errors")
    acme.wait_for(sent["id"])
    call("GET", "/api/v1/channels", key=acme.api_key[:-3] + "zzz")
    call("GET", "/api/v1/channels", key="ocm_000000000000_" + "y" * 43)
    call("POST", "/api/v1/messages", content=b'{"channel": "sandbox", "x": ' + password.encode())

    log = loud.log()
    assert "DEBUG" in log  # it did log at DEBUG
    assert len(answers) >= 4  # the error answers checked below
    for secret in secrets:
        hidden = _secret_part(secret)  # a key's secret part, on its own too
        assert len(hidden) >= 16, secret
        assert secret not in log and hidden not in log, "a secret reached the log"
        for answer in answers:
            assert secret not in answer and hidden not in answer, "a secret in an error"


def _secret_part(secret: str) -> str:
    """The random part of a credential: after ``ocm_<id>_`` for API keys, after the
    three-letter prefix for refresh tokens and client secrets; the rest is random
    URL-safe text, which may itself contain underscores."""
    if secret.startswith("ocm_"):
        return secret.split("_", 2)[2]
    if secret[:4] in ("ort_", "ocs_"):
        return secret[4:]
    return secret


def test_cors_is_closed_by_default(loud: Server) -> None:
    with httpx.Client(base_url=loud.url, timeout=10) as http:
        preflight = http.options(
            "/api/v1/messages",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        simple = http.get("/api/health", headers={"Origin": "https://evil.example"})
    for answer in (preflight, simple):
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-credentials" not in answer.headers


def test_no_apprise_destination_token_reaches_the_log(loud: Server) -> None:
    """Security review, finding 4: Apprise's requests go through urllib3, whose DEBUG
    lines carry the request's path and query — the tokens of a json://, Mattermost or
    similar URL. A send to one with its token in the path and the query leaves none."""
    acme = loud.tenant("apprise-hygiene")
    token = "APPRTOK" + secrets.token_hex(12)
    hook = WebhookPeer(kind="json")
    with hook.running(), httpx.Client(base_url=loud.url, timeout=30) as http:
        key = {"X-API-Key": acme.api_key}
        chat = {
            "name": "chat",
            "type": "chat",
            "default_sender": {"type": "topic", "address": "ops"},
        }
        assert http.post("/api/v1/channels", json=chat, headers=key).status_code == 201
        url = hook.address(f"hooks/{token}") + f"?-t={token}"
        put = http.put("/api/v1/channels/chat/credentials", json={"url": url}, headers=key)
        assert put.status_code == 204, put.text
        message = {
            "channel": "chat",
            "receiver": {"type": "topic", "address": "ops"},
            "content": {"type": "text", "text": "deploy done"},
        }
        sent = http.post("/api/v1/messages", json=message, headers=key).json()
        done = acme.wait_for(sent["id"], until=lambda m: m["status"] in ("sent", "failed"))
        assert done["status"] == "sent", done
    assert [r.path for r in hook.requests] == [f"/hooks/{token}"]  # it did go there
    assert token not in loud.log()
