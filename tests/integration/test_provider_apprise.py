"""The Apprise provider: its sender against loopback json://, form:// and ntfy://
endpoints, its URL and egress rules, and the whole path through the API."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from shared.adapters.providers.apprise_chat import PROVIDER, AppriseSender
from shared.domain.channels import validate_settings
from shared.domain.errors import ProviderError, ValidationFailed
from shared.ports import SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.peers.apprise_peers import NtfyPeer, WebhookPeer
from tests.support.pump import pump

SPEC = PROVIDER.specs[0]
ROOM = {"type": "topic", "address": "ops-alerts"}
BOT = {"type": "topic", "address": "ocm"}


@pytest.fixture
def hook() -> Iterator[WebhookPeer]:
    with WebhookPeer(kind="json").running() as running:
        assert isinstance(running, WebhookPeer)
        yield running


@pytest.fixture
def form() -> Iterator[WebhookPeer]:
    with WebhookPeer(kind="form").running() as running:
        assert isinstance(running, WebhookPeer)
        yield running


@pytest.fixture
def ntfy() -> Iterator[NtfyPeer]:
    with NtfyPeer().running() as running:
        assert isinstance(running, NtfyPeer)
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[AppriseSender]:
    s = AppriseSender(allow_private_egress=True)
    yield s
    await s.close()


def make_request(url: str, **kw: Any) -> SendRequest:
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "receiver": ROOM,
        "sender": BOT,
        "subject": kw.pop("subject", "Deploy"),
        "content": kw.pop("content", {"type": "text", "text": "v42 is live"}),
    }
    settings = validate_settings(SPEC, kw.pop("settings", {"timeout_seconds": 5}))
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel={"id": "ch_1", "tenant_id": "ten_1", "settings": settings},
        credentials={"url": url},
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def failure(sender: AppriseSender, request: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await sender.send(request)
    return err.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- what is sent ---------------------------------------------------------------


async def test_text_reaches_a_json_webhook_as_apprise_posts_it(hook, sender) -> None:
    result = await sender.send(make_request(hook.address("hooks/deploy")))
    assert result.provider_message_id is None  # Apprise hands back no id
    assert hook.received == [
        {"version": "1.0", "title": "Deploy", "message": "v42 is live", "attachments": [],
         "type": "info"}
    ]  # fmt: skip
    [request] = hook.requests
    assert (request.method, request.path) == ("POST", "/hooks/deploy")
    assert request.headers["user-agent"] == "Apprise"


async def test_the_title_prefix_goes_before_the_subject(hook, sender) -> None:
    settings = {"title_prefix": "[Acme]", "timeout_seconds": 5}
    await sender.send(make_request(hook.address(), settings=settings))
    await sender.send(make_request(hook.address(), settings=settings, subject=None))
    assert [r["title"] for r in hook.received] == ["[Acme] Deploy", "[Acme]"]


async def test_push_content_gives_title_and_body_to_a_form_webhook(form, sender) -> None:
    push = {"type": "push", "title": "Disk", "body": "92% full"}
    await sender.send(make_request(form.address(), content=push))
    await sender.send(make_request(form.address(), content={"type": "push", "title": "Ping"}))
    assert [(r["title"], r["message"], r["type"]) for r in form.received] == [
        ("Disk", "92% full", "info"),
        ("", "Ping", "info"),  # a title alone is the message
    ]
    assert form.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


async def test_html_goes_as_html_to_a_webhook_and_as_text_to_ntfy(hook, ntfy, sender) -> None:
    html = {"type": "html", "html": "<p>v42 is <b>live</b></p>"}
    await sender.send(make_request(hook.address(), content=html))
    await sender.send(make_request(ntfy.address("deploys"), content=html))
    assert hook.received[0]["message"] == "<p>v42 is <b>live</b></p>"
    assert ntfy.received[0]["message"] == "v42 is live"


async def test_ntfy_gets_a_json_message_posted_to_its_root(ntfy, sender) -> None:
    await sender.send(make_request(ntfy.address("deploys")))
    [request] = ntfy.requests
    assert (request.method, request.path) == ("POST", "/")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"topic": "deploys", "title": "Deploy", "message": "v42 is live"}


async def test_ntfy_credentials_in_the_url_are_sent_as_basic_or_bearer(ntfy, sender) -> None:
    ntfy.users["ann"] = "s3cret-pass"
    ntfy.tokens.add("tk_0123456789abcdef")
    await sender.send(make_request(ntfy.address("deploys", credentials="ann:s3cret-pass")))
    await sender.send(make_request(ntfy.address("deploys", credentials="tk_0123456789abcdef")))
    assert [r["authorization"].split()[0] for r in ntfy.received] == ["Basic", "Bearer"]


async def test_webhook_basic_auth_comes_from_the_url(hook, sender) -> None:
    hook.auth = ("ann", "s3cret-pass")
    await sender.send(make_request(hook.address(credentials="ann:s3cret-pass")))
    assert len(hook.received) == 1
    err = await failure(sender, make_request(hook.address(credentials="ann:wrong-pass")))
    assert (err.kind, err.code, err.provider_status) == ("transient", "APPRISE_SEND_FAILED", "401")
    assert "wrong-pass" not in f"{err} {err!r}"


# -- how failures are classed -------------------------------------------------------


async def test_a_server_error_is_transient_with_its_status(hook, sender) -> None:
    hook.fail_next.append(500)
    err = await failure(sender, make_request(hook.address()))
    assert (err.kind, err.code, err.provider_status) == ("transient", "APPRISE_SEND_FAILED", "500")
    assert err.reason.startswith("JSON: ")
    await sender.send(make_request(hook.address()))  # the next one goes through
    assert len(hook.received) == 1


async def test_ntfy_rate_limiting_is_throttled(ntfy, sender) -> None:
    ntfy.fail_next.append(429)
    err = await failure(sender, make_request(ntfy.address("deploys")))
    assert (err.kind, err.code, err.provider_status) == ("throttled", "APPRISE_THROTTLED", "429")
    assert "too many requests" in err.reason


async def test_an_unreachable_endpoint_is_transient(sender) -> None:
    err = await failure(sender, make_request(f"json://127.0.0.1:{free_port()}/hook"))
    assert (err.kind, err.code) == ("transient", "APPRISE_SEND_FAILED")
    assert "Connection error" in err.reason


async def test_a_silent_endpoint_times_out_within_the_channel_timeout(sender) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"json://127.0.0.1:{listener.getsockname()[1]}/hook"
        started = time.monotonic()
        err = await failure(sender, make_request(url, settings={"timeout_seconds": 0.3}))
    assert (err.kind, err.code) == ("transient", "APPRISE_TIMEOUT")
    assert time.monotonic() - started < 1.0


async def test_redirects_are_not_followed_even_when_the_url_asks(hook, sender) -> None:
    hook.redirect_next = f"{hook.url}/elsewhere"
    err = await failure(sender, make_request(hook.address() + "?redirect=yes"))
    assert (err.kind, err.code, err.provider_status) == ("transient", "APPRISE_SEND_FAILED", "302")
    assert [r.path for r in hook.requests] == ["/hook"]


@pytest.mark.parametrize(
    "url", ["", "no scheme here", "json://", "slack://not-three-tokens", "gotify://"]
)
async def test_a_url_apprise_cannot_load_is_permanent(sender, url) -> None:
    err = await failure(sender, make_request(url))
    assert (err.kind, err.code) == ("permanent", "APPRISE_URL_INVALID")


@pytest.mark.parametrize(
    "url", ["bogus://host/x", "mailto://ann:pw@mail.example.com", "http://example.com/hook"]
)
async def test_a_scheme_outside_the_accepted_ones_is_permanent(sender, url) -> None:
    err = await failure(sender, make_request(url))
    assert (err.kind, err.code) == ("permanent", "APPRISE_SCHEME_UNSUPPORTED")


@pytest.mark.parametrize(
    "content",
    [{"type": "media", "url": "https://example.com/a.png", "media_type": "image/png"},
     {"type": "push", "data": {"k": "v"}}],
)  # fmt: skip
async def test_content_without_text_is_refused_as_permanent(sender, content) -> None:
    err = await failure(sender, make_request(f"json://127.0.0.1:{free_port()}/x", content=content))
    assert (err.kind, err.code) == ("permanent", "APPRISE_INVALID_MESSAGE")


# -- egress and secrets -----------------------------------------------------------


@pytest.mark.parametrize("scheme", ["json", "form", "ntfy", "gotify", "matrix"])
async def test_without_private_egress_a_loopback_host_is_refused(scheme) -> None:
    sender = AppriseSender(allow_private_egress=False)
    url = f"{scheme}://ann:pw@127.0.0.1:{free_port()}/token-or-path"
    err = await failure(sender, make_request(url))  # not a connection failure: no attempt
    assert (err.kind, err.code) == ("permanent", "EGRESS_REFUSED")


async def test_a_metadata_address_is_refused_even_with_private_egress(sender) -> None:
    err = await failure(sender, make_request("json://169.254.169.254/latest/meta-data"))
    assert (err.kind, err.code) == ("permanent", "EGRESS_REFUSED")


async def test_a_host_that_does_not_resolve_is_transient(sender) -> None:
    err = await failure(sender, make_request("json://ocm-apprise-test.invalid/hook"))
    assert (err.kind, err.code) == ("transient", "APPRISE_DNS_FAILED")


class RootLines(logging.Handler):
    """What the platform's log handlers (on the root logger) are handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@pytest.fixture
def root_lines() -> Iterator[RootLines]:
    handler, root = RootLines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


async def test_the_url_never_shows_in_errors_or_logs(ntfy, sender, root_lines) -> None:
    ntfy.fail_next.append(500)
    secret_topic, password = "s3cret-topic-7f3a", "hunter2-pw"
    failed = await failure(
        sender, make_request(ntfy.address(secret_topic, credentials=f"ann:{password}"))
    )
    unloadable = await failure(sender, make_request("slack://T1JJ3T3L2/A1BRTD4JD"))
    assert failed.code == "APPRISE_SEND_FAILED"
    assert "topic '***'" in failed.reason  # Apprise names the topic: masked
    assert unloadable.code == "APPRISE_URL_INVALID"  # one token short: Apprise logs the URL
    assert any("127.0.0.1" in line for line in root_lines.lines)  # requests' lines still flow
    shown = f"{failed} {failed!r} {unloadable} {unloadable!r} {root_lines.lines}"
    for secret in (secret_topic, password, "T1JJ3T3L2", "A1BRTD4JD"):
        assert secret not in shown


# -- the spec ---------------------------------------------------------------------


def test_the_spec_is_a_default_chat_provider_with_a_secret_url() -> None:
    assert (SPEC.type, SPEC.provider, SPEC.default) == ("chat", "apprise", True)
    [url] = SPEC.credentials
    assert (url.name, url.secret, url.required) == ("url", True, True)
    assert (SPEC.receipts, SPEC.callbacks, SPEC.rate_per_second) == (False, False, None)
    assert PROVIDER.callbacks is None


def test_settings_default_the_timeout_and_take_no_base_url() -> None:
    assert validate_settings(SPEC, {}) == {"title_prefix": None, "timeout_seconds": 15.0}
    with pytest.raises(ValidationFailed):
        validate_settings(SPEC, {"base_url": "https://hooks.slack.com"})


# -- through the API ----------------------------------------------------------------


async def chat_channel(api: httpx.AsyncClient, deps: Deps, url: str) -> dict[str, str]:
    """A tenant with an apprise chat channel sending to ``url``; its API key header."""
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    channel = await api.post(
        "/api/v1/channels",
        json={
            "name": "alerts",
            "type": "chat",
            "settings": {"title_prefix": "[Acme]"},
            "default_sender": BOT,
        },
        headers=key,
    )
    assert channel.status_code == 201, channel.text
    assert channel.json()["provider"] == "apprise"  # the type's default provider
    stored = await api.put("/api/v1/channels/alerts/credentials", json={"url": url}, headers=key)
    assert stored.is_success, stored.text
    return key


async def post_message(api: httpx.AsyncClient, key: dict[str, str], **content: Any) -> str:
    accepted = await api.post(
        "/api/v1/messages",
        json={"channel": "alerts", "receiver": ROOM, "subject": "Deploy", "content": content},
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    message_id: str = accepted.json()["id"]
    return message_id


async def test_through_the_api_a_message_reaches_the_webhook(api, deps, hook) -> None:
    key = await chat_channel(api, deps, hook.address("hooks/s3cret-path"))
    message_id = await post_message(api, key, type="text", text="v42 is live")
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert message["status"] == "sent"
    assert [(r["title"], r["message"]) for r in hook.received] == [("[Acme] Deploy", "v42 is live")]
    channel = (await api.get("/api/v1/channels/alerts", headers=key)).json()
    assert "s3cret-path" not in orjson.dumps(channel).decode()


async def test_through_the_api_a_failing_webhook_keeps_the_url_hidden(api, deps, hook) -> None:
    key = await chat_channel(api, deps, hook.address("hooks/s3cret-path", credentials="a:pw-9f"))
    hook.fail_next.append(503)
    message_id = await post_message(api, key, type="text", text="v42 is live")
    await pump(deps)
    message = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    [retrying] = [e for e in message["events"] if e["type"] == "message.retrying"]
    assert (message["status"], retrying["error"]["code"]) == ("queued", "APPRISE_SEND_FAILED")
    assert retrying["error"]["provider_status"] == "503"
    text = orjson.dumps(message).decode()
    assert "s3cret-path" not in text and "pw-9f" not in text


async def test_through_the_api_content_apprise_cannot_carry_is_refused(api, deps, hook) -> None:
    key = await chat_channel(api, deps, hook.address())
    answer = await api.post(
        "/api/v1/messages",
        json={
            "channel": "alerts",
            "receiver": ROOM,
            "content": {"type": "media", "url": "https://example.com/a.png", "media_type": "a/b"},
        },
        headers=key,
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "CONTENT_NOT_SUPPORTED")
