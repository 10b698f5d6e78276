"""The SendGrid provider against a peer that follows SendGrid's published v3 API, its
callbacks signed as SendGrid signs them, and the whole path through OCM's API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.adapters.providers.sendgrid import PROVIDER, SendGridSender
from shared.adapters.providers.sendgrid_callbacks import (
    SendGridCallbacks,
    parse_events,
    verify_signature,
)
from shared.domain.errors import CallbackInvalid, CallbackRejected, ProviderError
from shared.ports import CallbackRequest, SendRequest
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.fakes import FakeClock
from tests.peers.sendgrid import Failure, SendGridPeer, public_key_of, sign
from tests.support.pump import pump

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def peer() -> Iterator[SendGridPeer]:
    with SendGridPeer().running() as running:
        assert isinstance(running, SendGridPeer)
        # One answered request first: a peer stopped before its loop reached
        # run_forever would not stop (tests/peers/base.py) and cost a 10 s join.
        httpx.get(running.url + "/ready")
        running.requests.clear()
        yield running


@pytest.fixture
def helper() -> SendGridPeer:
    """A peer not serving: its keys and request builders only."""
    return SendGridPeer()


@pytest.fixture
async def sender() -> Any:
    s = SendGridSender(clock=FakeClock(NOW), allow_private_egress=True)
    yield s
    await s.close()


def make_request(peer: SendGridPeer, **kw: Any) -> SendRequest:
    message = {
        "id": "msg_01",
        "tenant_id": "ten_1",
        "sender": {"type": "email", "address": "alice@acme.example", "display_name": "Alice A"},
        "receiver": {"type": "email", "address": kw.pop("to", "bob@example.com")},
        "subject": "Greetings",
        "content": kw.pop("content", {"type": "text", "text": "Hello Bob"}),
        **kw.pop("message", {}),
    }
    settings = {"base_url": kw.pop("base_url", peer.url), **kw.pop("settings", {})}
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel={"id": "chn_1", "tenant_id": "ten_1", "settings": settings},
        credentials=kw.pop("credentials", {"api_key": peer.api_key}),
        attempt=1,
        throttles=0,
        idempotency_key="msg_01",
    )


async def failing(sender: SendGridSender, request: SendRequest) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        await sender.send(request)
    return err.value


# -- sending ---------------------------------------------------------------------


async def test_a_text_email_is_posted_with_the_bearer_key_and_our_custom_args(peer, sender):
    result = await sender.send(make_request(peer))
    [recorded] = [r for r in peer.requests if r.path == "/v3/mail/send"]
    assert recorded.method == "POST"
    assert recorded.headers["authorization"] == f"Bearer {peer.api_key}"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.json() == {
        "personalizations": [
            {
                "to": [{"email": "bob@example.com"}],
                "custom_args": {"ocm_message_id": "msg_01", "ocm_channel_id": "chn_1"},
            }
        ],
        "from": {"email": "alice@acme.example", "name": "Alice A"},
        "subject": "Greetings",
        "content": [{"type": "text/plain", "value": "Hello Bob"}],
    }
    assert result.provider_message_id == peer.sent[0]["x_message_id"]


async def test_html_goes_text_first_with_attachments_categories_and_headers(peer, sender):
    pdf = base64.b64encode(b"%PDF-1.4 fake").decode()
    content = {
        "type": "html",
        "html": "<p>Hello <b>Bob</b></p>",
        "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "content": pdf}],
    }
    request = make_request(
        peer,
        content=content,
        settings={"categories": ["receipts", "eu"]},
        message={"email_headers": {"List-Unsubscribe": "<https://acme.example/u/1>"}},
    )
    await sender.send(request)
    body = peer.sent[0]["body"]
    assert body["content"] == [
        {"type": "text/plain", "value": "Hello Bob"},
        {"type": "text/html", "value": "<p>Hello <b>Bob</b></p>"},
    ]
    assert body["attachments"] == [
        {
            "content": pdf,
            "filename": "a.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
        }
    ]
    assert body["categories"] == ["receipts", "eu"]
    assert body["personalizations"][0]["headers"] == {
        "List-Unsubscribe": "<https://acme.example/u/1>"
    }


async def test_a_template_content_sends_a_dynamic_template(peer, sender) -> None:
    content = {"type": "template", "template": "d-0123456789abcdef", "data": {"name": "Bob"}}
    await sender.send(make_request(peer, content=content, message={"subject": None}))
    body = peer.sent[0]["body"]
    assert body["template_id"] == "d-0123456789abcdef"
    assert body["personalizations"][0]["dynamic_template_data"] == {"name": "Bob"}
    assert "content" not in body and "subject" not in body


async def test_sandbox_mode_asks_sendgrid_to_only_validate(peer, sender) -> None:
    result = await sender.send(make_request(peer, settings={"sandbox_mode": True}))
    assert peer.sandboxed[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert peer.sent == []
    assert result.provider_message_id is None


async def test_a_wrong_api_key_is_permanent_and_never_shown(peer, sender) -> None:
    error = await failing(sender, make_request(peer, credentials={"api_key": "SG.wrong-hunter2"}))
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "SENDGRID_UNAUTHORIZED",
        "401",
    )
    assert "authorization grant is invalid" in error.reason
    assert "hunter2" not in f"{error} {error!r} {error.details}"


async def test_a_channel_without_an_api_key_is_refused_before_calling(peer, sender) -> None:
    error = await failing(sender, make_request(peer, credentials={}))
    assert (error.kind, error.code) == ("permanent", "SENDGRID_UNAUTHORIZED")
    assert peer.requests == []


async def test_a_bad_request_is_permanent_with_sendgrids_field_and_message(peer, sender):
    request = make_request(peer)
    request.message["receiver"]["display_name"] = "Bob, Jr"  # to.name may hold no comma
    error = await failing(sender, request)
    assert (error.kind, error.code, error.provider_status) == (
        "permanent",
        "SENDGRID_BAD_REQUEST",
        "400",
    )
    assert error.reason == (
        "personalizations.0.to.0.name: The to.name field cannot include the ; or , characters."
    )


async def test_an_unverified_sender_is_permanently_forbidden(peer, sender) -> None:
    peer.verified_senders = {"noreply@acme.example"}
    error = await failing(sender, make_request(peer))
    assert (error.kind, error.code) == ("permanent", "SENDGRID_FORBIDDEN")
    assert error.reason.startswith("from: The from address does not match a verified Sender")


async def test_a_request_over_the_size_limit_is_permanent(peer, sender) -> None:
    peer.max_body_bytes = 100
    error = await failing(sender, make_request(peer))
    assert (error.kind, error.code) == ("permanent", "SENDGRID_PAYLOAD_TOO_LARGE")


async def test_a_429_is_throttled_until_retry_after(peer, sender) -> None:
    peer.fail_next.append(Failure(429, [{"field": None, "message": "too many requests"}],
                                  {"Retry-After": "3"}))  # fmt: skip
    error = await failing(sender, make_request(peer))
    assert (error.kind, error.code, error.retry_after) == ("throttled", "SENDGRID_THROTTLED", 3.0)
    assert error.reason == "too many requests"


async def test_a_429_without_retry_after_waits_until_the_rate_limit_resets(peer, sender):
    reset = str(int(NOW.timestamp()) + 42)
    peer.fail_next.append(Failure(429, [], {"X-RateLimit-Reset": reset}))
    error = await failing(sender, make_request(peer))
    assert (error.kind, error.retry_after) == ("throttled", 42.0)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_transient(peer, sender, status) -> None:
    peer.fail_next.append(Failure(status, [{"field": None, "message": "Internal error"}]))
    error = await failing(sender, make_request(peer))
    assert (error.kind, error.code) == ("transient", f"SENDGRID_HTTP_{status}")
    await sender.send(make_request(peer))  # and the next attempt goes through
    assert len(peer.sent) == 1


async def test_an_attachment_by_url_is_permanent_and_nothing_is_posted(peer, sender) -> None:
    content = {
        "type": "text",
        "text": "x",
        "attachments": [{"filename": "a", "content_type": "a/b", "url": "https://x.example/a"}],
    }
    error = await failing(sender, make_request(peer, content=content))
    assert (error.kind, error.code) == ("permanent", "ATTACHMENT_URL_NOT_SUPPORTED")
    assert peer.requests == []


async def test_an_unreachable_api_is_transient(peer) -> None:
    sender = SendGridSender(clock=FakeClock(NOW), allow_private_egress=True)
    error = await failing(sender, make_request(peer, base_url="http://127.0.0.1:9"))
    await sender.close()
    assert (error.kind, error.code) == ("transient", "SENDGRID_CONNECTION_FAILED")


async def test_private_destinations_are_refused_without_permission(peer) -> None:
    sender = SendGridSender(clock=FakeClock(NOW), allow_private_egress=False)
    error = await failing(sender, make_request(peer))
    await sender.close()
    assert (error.kind, error.code) == ("permanent", "EGRESS_REFUSED")
    assert peer.requests == []


# -- the Signed Event Webhook ------------------------------------------------------

# The vector of SendGrid's own SDK tests (sendgrid-python, test/unit/test_eventwebhook.py).
SDK_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SDK_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15Tl"
    "uLtEZtM="
)
SDK_TIMESTAMP = "1600112502"
SDK_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",'
    b'"timestamp":1600112492}]\r\n'
)
SDK_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8RE"
    "ntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)


def callback(body: bytes, headers: dict[str, str], method: str = "POST") -> CallbackRequest:
    return CallbackRequest(
        method=method,
        url="https://ocm.example/api/v1/callbacks/sendgrid/chn_1",
        headers={k.lower(): v for k, v in headers.items()},
        query=[],
        body=body,
    )


def test_sendgrids_published_vector_verifies() -> None:
    assert verify_signature(SDK_KEY, SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD)


@pytest.mark.parametrize(
    ("key", "signature", "timestamp", "payload"),
    [
        (SDK_OTHER_KEY, SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD),
        (SDK_KEY, SDK_SIGNATURE, SDK_TIMESTAMP, b"payload"),
        (SDK_KEY, SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD.rstrip()),
        (SDK_KEY, SDK_SIGNATURE, "1600112503", SDK_PAYLOAD),
        (SDK_KEY, SDK_SIGNATURE[:-8] + "AAAAAAA=", SDK_TIMESTAMP, SDK_PAYLOAD),
        (SDK_KEY, "not base64!", SDK_TIMESTAMP, SDK_PAYLOAD),
        ("not a key", SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD),
    ],
    ids=[
        "other-key",
        "other-payload",
        "trimmed-payload",
        "other-time",
        "bad-sig",
        "junk",
        "junk-key",
    ],
)
def test_a_tampered_vector_does_not_verify(key, signature, timestamp, payload) -> None:
    assert not verify_signature(key, signature, timestamp, payload)


def test_the_published_vector_passes_the_callbacks_at_its_own_time() -> None:
    callbacks = SendGridCallbacks(now=lambda: 1600112502 + 30)
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": SDK_SIGNATURE,
        "X-Twilio-Email-Event-Webhook-Timestamp": SDK_TIMESTAMP,
        "Content-Type": "application/json",
    }
    creds = {"event_webhook_public_key": SDK_KEY}
    callbacks.verify(callback(SDK_PAYLOAD, headers), {"id": "chn_1"}, creds)
    with pytest.raises(CallbackRejected, match="too old"):
        SendGridCallbacks(now=lambda: 1600112502 + 601).verify(
            callback(SDK_PAYLOAD, headers), {"id": "chn_1"}, creds
        )


def test_a_peer_signed_batch_verifies_and_any_change_is_rejected(helper) -> None:
    callbacks = SendGridCallbacks()
    creds = {"event_webhook_public_key": helper.event_public_key}
    body, headers = helper.event_callback([{"event": "processed", "sg_event_id": "e1"}])
    callbacks.verify(callback(body, headers), {"id": "chn_1"}, creds)
    tampered = body.replace(b"processed", b"delivered")
    for request in (
        callback(tampered, headers),
        callback(body, {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1"}),
        callback(body, {k: v for k, v in headers.items() if "Signature" not in k}),
        callback(body, headers, method="GET"),
    ):
        with pytest.raises(CallbackRejected):
            callbacks.verify(request, {"id": "chn_1"}, creds)
    stranger = public_key_of(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CallbackRejected):
        callbacks.verify(
            callback(body, headers), {"id": "chn_1"}, {"event_webhook_public_key": stranger}
        )


def test_event_callbacks_are_refused_without_a_public_key(helper) -> None:
    body, headers = helper.event_callback([])
    with pytest.raises(CallbackRejected, match="event_webhook_public_key"):
        SendGridCallbacks().verify(callback(body, headers), {"id": "chn_1"}, {"api_key": "k"})


# -- events → receipts ---------------------------------------------------------------


def sent_record() -> dict[str, Any]:
    return {
        "x_message_id": "LRzXl_NHStOGhQ4kofSm_A",
        "body": {
            "personalizations": [
                {
                    "to": [{"email": "bob@example.com"}],
                    "custom_args": {"ocm_message_id": "msg_01", "ocm_channel_id": "chn_1"},
                }
            ]
        },
    }


def payloads(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in parse_events(orjson.dumps(list(events)), "chn_1")]


def test_events_become_receipts_by_sendgrids_meaning(helper) -> None:
    sent = sent_record()
    events = [
        helper.event(sent, "processed"),
        helper.event(sent, "deferred", response="400 try again later"),
        helper.event(sent, "delivered", response="250 OK"),
        helper.event(sent, "open"),
        helper.event(sent, "click", url="https://acme.example"),
    ]
    got = payloads(*events)
    assert [(p["status"], p["provider_status"]) for p in got] == [
        ("delivered", "delivered"),
        ("read", "open"),
    ]
    assert got[0] == {
        "event_id": events[2]["sg_event_id"],
        "message_id": "msg_01",
        "provider_message_id": "LRzXl_NHStOGhQ4kofSm_A",
        "status": "delivered",
        "provider_status": "delivered",
    }


def test_failures_carry_their_reason_and_bounces_opt_the_address_out(helper) -> None:
    sent = sent_record()
    bounce, blocked, dropped = payloads(
        helper.event(sent, "bounce", type="bounce", status="5.1.1", reason="550 no such user"),
        helper.event(sent, "bounce", type="blocked", status="5.0.0", reason="554 blocked by RBL"),
        helper.event(sent, "dropped", reason="Bounced Address", status="5.0.0"),
    )
    assert (bounce["status"], bounce["error_code"], bounce["error_reason"], bounce["opt_out"]) == (
        "failed",
        "SENDGRID_BOUNCED",
        "550 no such user",
        "bounce",
    )
    assert (blocked["error_code"], blocked["provider_status"]) == (
        "SENDGRID_BLOCKED",
        "bounce:blocked",
    )
    assert "opt_out" not in blocked
    assert (dropped["status"], dropped["error_code"], dropped["error_reason"]) == (
        "failed",
        "SENDGRID_DROPPED",
        "Bounced Address",
    )
    assert "opt_out" not in dropped


def test_complaints_and_unsubscribes_only_opt_out(helper) -> None:
    sent = sent_record()
    got = payloads(
        helper.event(sent, "spamreport"),
        helper.event(sent, "unsubscribe"),
        helper.event(sent, "group_unsubscribe", asm_group_id=7),
    )
    assert [(p["status"], p["opt_out"]) for p in got] == [
        (None, "complaint"),
        (None, "unsubscribe"),
        (None, "unsubscribe"),
    ]


def test_events_of_mail_not_sent_by_this_channel_are_skipped(helper) -> None:
    sent = sent_record()
    foreign = helper.event(sent, "delivered")
    del foreign["ocm_message_id"]
    other_channel = helper.event(sent, "delivered", ocm_channel_id="chn_other")
    assert payloads(foreign, other_channel) == []


@pytest.mark.parametrize("body", [b"not json", b'{"event": "delivered"}', b"[1, 2]"])
def test_a_verified_body_that_is_not_an_event_array_is_invalid(body) -> None:
    with pytest.raises(CallbackInvalid):
        parse_events(body, "chn_1")


def test_an_event_without_its_event_id_is_invalid(helper) -> None:
    event = helper.event(sent_record(), "delivered")
    del event["sg_event_id"]
    with pytest.raises(CallbackInvalid):
        parse_events(orjson.dumps([event]), "chn_1")


# -- Inbound Parse -----------------------------------------------------------------

PARSE_AUTH = {"inbound_parse_username": "sg-parse", "inbound_parse_password": "s3cret-parse"}


def inbound(source: SendGridPeer, creds: dict[str, str], **kw: Any) -> dict[str, Any]:
    body, headers = source.inbound_parse(**kw)
    callbacks = SendGridCallbacks()
    request = callback(body, headers)
    callbacks.verify(request, {"id": "chn_1"}, creds)
    [event] = callbacks.parse(request, {"id": "chn_1"}, creds).events
    assert event.kind == "inbound"
    return dict(event.payload)


def test_an_inbound_parse_post_with_matching_basic_auth_is_an_inbound_email(helper) -> None:
    payload = inbound(
        helper, PARSE_AUTH, basic_auth=("sg-parse", "s3cret-parse"), html="<p>My order…</p>"
    )
    assert payload == {
        "event_id": "CAF=abc123@mail.example.org",
        "provider_message_id": "CAF=abc123@mail.example.org",
        "sender": {
            "type": "email",
            "address": "alice@example.org",
            "display_name": "Alice Example",
        },
        "receiver": {"type": "email", "address": "support@parse.acme.example"},
        "content": {
            "type": "html",
            "html": "<p>My order…</p>",
            "text": "My order has not arrived.",
        },
        "subject": "Help please",
    }


def test_an_inbound_email_without_message_id_is_keyed_by_its_body(helper) -> None:
    auth = ("sg-parse", "s3cret-parse")
    payload = inbound(helper, PARSE_AUTH, basic_auth=auth, message_id=None)
    assert payload["event_id"].startswith("sha256:")
    assert payload["content"] == {"type": "text", "text": "My order has not arrived."}


def test_the_raw_format_is_read_from_the_mime_message(helper) -> None:
    raw = (
        b"From: Carol <carol@example.net>\r\nTo: help@parse.acme.example\r\n"
        b"Subject: Raw\r\nMessage-ID: <raw-1@example.net>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlain and raw\r\n"
    )
    payload = inbound(
        helper,
        PARSE_AUTH,
        basic_auth=("sg-parse", "s3cret-parse"),
        sender="Carol <carol@example.net>",
        to="help@parse.acme.example",
        raw=raw,
    )
    assert payload["event_id"] == "raw-1@example.net"
    assert payload["content"] == {"type": "text", "text": "Plain and raw\n"}


def test_a_verified_inbound_post_without_a_sender_is_invalid(helper) -> None:
    body, headers = helper.inbound_parse(sender="undisclosed-recipients:;", signed=True)
    creds = {"inbound_parse_public_key": helper.parse_public_key}
    callbacks, request = SendGridCallbacks(), callback(body, headers)
    callbacks.verify(request, {"id": "chn_1"}, creds)
    with pytest.raises(CallbackInvalid):
        callbacks.parse(request, {"id": "chn_1"}, creds)


def test_inbound_parse_is_refused_unless_configured_and_matching(helper) -> None:
    callbacks = SendGridCallbacks()
    cases = [
        ({}, ("sg-parse", "s3cret-parse")),  # nothing configured: never unverified
        ({"api_key": "k", "event_webhook_public_key": helper.event_public_key}, None),
        (PARSE_AUTH, None),
        (PARSE_AUTH, ("sg-parse", "wrong")),
        (PARSE_AUTH, ("other", "s3cret-parse")),
    ]
    for creds, auth in cases:
        body, headers = helper.inbound_parse(basic_auth=auth)
        with pytest.raises(CallbackRejected):
            callbacks.verify(callback(body, headers), {"id": "chn_1"}, creds)


def test_a_signed_inbound_parse_verifies_with_the_policy_key(helper) -> None:
    creds = {"inbound_parse_public_key": helper.parse_public_key}
    payload = inbound(helper, creds, signed=True)
    assert payload["sender"]["address"] == "alice@example.org"
    body, headers = helper.inbound_parse(signed=True)
    with pytest.raises(CallbackRejected):
        SendGridCallbacks().verify(callback(body + b" ", headers), {"id": "chn_1"}, creds)
    with pytest.raises(CallbackRejected):  # signed with the event key, not the policy's
        SendGridCallbacks().verify(
            callback(body, {**headers, **sign(helper.event_key, body)}), {"id": "chn_1"}, creds
        )


def test_with_both_configured_both_must_pass(helper) -> None:
    creds = {**PARSE_AUTH, "inbound_parse_public_key": helper.parse_public_key}
    body, headers = helper.inbound_parse(signed=True)  # no basic auth
    with pytest.raises(CallbackRejected):
        SendGridCallbacks().verify(callback(body, headers), {"id": "chn_1"}, creds)
    inbound(helper, creds, signed=True, basic_auth=("sg-parse", "s3cret-parse"))


# -- through OCM's API ---------------------------------------------------------------


async def setup_channel(api: httpx.AsyncClient, deps: Deps, peer: SendGridPeer, **creds: str):
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    channel = await api.post(
        "/api/v1/channels",
        json={
            "name": "mail",
            "type": "email",
            "provider": "sendgrid",
            "settings": {"base_url": peer.url, "categories": ["ocm"]},
            "default_sender": {"type": "email", "address": "noreply@acme.example"},
        },
        headers=key,
    )
    assert channel.status_code == 201, channel.text
    credentials = {
        "api_key": peer.api_key,
        "event_webhook_public_key": peer.event_public_key,
        **creds,
    }
    put = await api.put("/api/v1/channels/mail/credentials", json=credentials, headers=key)
    assert put.status_code == 204, put.text
    return key, channel.json()["id"]


async def send_one(api: httpx.AsyncClient, deps: Deps, key: dict[str, str]) -> str:
    accepted = await api.post(
        "/api/v1/messages",
        json={
            "channel": "mail",
            "receiver": {"type": "email", "address": "bob@example.com"},
            "subject": "Your receipt",
            "content": {"type": "text", "text": "Thanks!"},
        },
        headers=key,
    )
    assert accepted.status_code == 202, accepted.text
    await pump(deps)
    return str(accepted.json()["id"])


async def test_a_message_is_sent_and_a_signed_receipt_delivers_it_once(api, deps, peer):
    key, channel_id = await setup_channel(api, deps, peer)
    message_id = await send_one(api, deps, key)
    sent = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert sent["status"] == "sent"
    assert sent["provider_message_id"] == peer.sent[0]["x_message_id"]
    assert peer.sent[0]["body"]["personalizations"][0]["custom_args"] == {
        "ocm_message_id": message_id,
        "ocm_channel_id": channel_id,
    }
    body, headers = peer.event_callback([peer.event(peer.sent[0], "delivered")])
    url = f"/api/v1/callbacks/sendgrid/{channel_id}"
    assert (await api.post(url, content=body, headers=headers)).status_code == 200
    await pump(deps)
    delivered = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert delivered["status"] == "delivered"
    assert (await api.post(url, content=body, headers=headers)).status_code == 200
    await pump(deps)
    again = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert again["events"] == delivered["events"]


async def test_a_bounce_fails_the_message_with_sendgrids_reason(api, deps, peer) -> None:
    key, channel_id = await setup_channel(api, deps, peer)
    message_id = await send_one(api, deps, key)
    event = peer.event(peer.sent[0], "bounce", type="bounce", reason="550 5.1.1 unknown user")
    body, headers = peer.event_callback([event])
    response = await api.post(
        f"/api/v1/callbacks/sendgrid/{channel_id}", content=body, headers=headers
    )
    assert response.status_code == 200
    await pump(deps)
    failed = (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "SENDGRID_BOUNCED"
    assert "unknown user" in failed["error"]["reason"]


async def test_a_spam_report_opts_the_receiver_out(api, deps, peer) -> None:
    key, channel_id = await setup_channel(api, deps, peer)
    message_id = await send_one(api, deps, key)
    body, headers = peer.event_callback([peer.event(peer.sent[0], "spamreport")])
    url = f"/api/v1/callbacks/sendgrid/{channel_id}"
    assert (await api.post(url, content=body, headers=headers)).status_code == 200
    await pump(deps)
    listed = await api.get("/api/v1/opt-outs", params={"channel_type": "email"}, headers=key)
    assert [(o["address"], o["reason"]) for o in listed.json()["items"]] == [
        ("bob@example.com", "complaint")
    ]
    assert (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()["status"] == "sent"


async def test_a_badly_signed_callback_is_401_and_changes_nothing(api, deps, peer) -> None:
    key, channel_id = await setup_channel(api, deps, peer)
    message_id = await send_one(api, deps, key)
    body, headers = peer.event_callback([peer.event(peer.sent[0], "delivered")])
    forged = body.replace(b'"delivered"', b'"open"')
    response = await api.post(
        f"/api/v1/callbacks/sendgrid/{channel_id}", content=forged, headers=headers
    )
    assert response.status_code == 401
    assert await pump(deps) == 0
    assert (await api.get(f"/api/v1/messages/{message_id}", headers=key)).json()["status"] == "sent"


async def test_an_inbound_parse_post_becomes_an_inbound_message(api, deps, peer) -> None:
    key, channel_id = await setup_channel(api, deps, peer, **PARSE_AUTH)
    url = f"/api/v1/callbacks/sendgrid/{channel_id}"
    body, headers = peer.inbound_parse(basic_auth=("sg-parse", "wrong"))
    assert (await api.post(url, content=body, headers=headers)).status_code == 401
    body, headers = peer.inbound_parse(basic_auth=("sg-parse", "s3cret-parse"))
    assert (await api.post(url, content=body, headers=headers)).status_code == 200
    assert (await api.post(url, content=body, headers=headers)).status_code == 200
    await pump(deps)
    items = (await api.get("/api/v1/messages", params={"direction": "inbound"}, headers=key)).json()
    [message] = items["items"]
    assert message["status"] == "received"
    assert message["sender"] == {
        "type": "email",
        "address": "alice@example.org",
        "display_name": "Alice Example",
    }
    assert message["content"] == {"type": "text", "text": "My order has not arrived."}
    assert message["subject"] == "Help please"
    assert message["provider_message_id"] == "CAF=abc123@mail.example.org"


def test_the_provider_is_an_email_provider_with_callbacks_but_not_the_default() -> None:
    [spec] = PROVIDER.specs
    assert (spec.type, spec.provider, spec.default, spec.callbacks) == (
        "email",
        "sendgrid",
        False,
        True,
    )
    assert spec.settings().model_dump() == {
        "base_url": "https://api.sendgrid.com",
        "categories": [],
        "sandbox_mode": False,
    }
    secret = {f.name for f in spec.credentials if f.secret}
    assert secret == {"api_key", "inbound_parse_username", "inbound_parse_password"}
