"""Webhooks as a client sees them, against `ocm serve`: every event of a run of 500
messages reaches a receiver on loopback exactly once per event id, each signature
verified with the `standardwebhooks` library (not our code); a receiver failing its
first calls gets them later; a 410 disables; a replay re-delivers exactly its
window; a rotated secret signs twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.e2e.conftest import Client, Server, serving
from tests.peers.webhook_receiver import Answer, Call, WebhookReceiver

FAST = {
    "OCM_WEBHOOK_TIMEOUT_SECONDS": "5",
    "OCM_LOOKUP_CACHE_SECONDS": "0.2",
}


def received(receiver: WebhookReceiver) -> list[Call]:
    """The calls answered 2xx (what the receiver took)."""
    return [c for c in list(receiver.calls) if c.status < 300]


def events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [c.json() for c in received(receiver)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory, "webhooks", **FAST)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(default=Answer(204, body=b"")).running() as peer:
        yield peer  # type: ignore[misc]


def subscribe(client: Client, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    created = client.post(
        "/api/v1/webhooks",
        json={"url": receiver.hook_url(), "events": ["message.*"], **body},
    )
    assert created.status_code == 201, created.text
    answer = created.json()
    receiver.secrets.append(answer["secret"])
    return dict(answer["webhook"])


def wait(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_every_event_of_500_messages_arrives_once_and_verified(
    server: Server, receiver: WebhookReceiver
) -> None:
    client = server.tenant("hooks")
    client.channel("sandbox")
    subscribe(client, receiver)
    time.sleep(0.3)  # the lookup cache learns of the subscription
    ids = []
    for start in range(0, 500, 100):
        batch = [
            {
                "channel": "sandbox",
                "receiver": {"type": "phone", "address": "+4791234567"},
                "content": {"type": "text", "text": f"hello {i}"},
                "context": {"n": i},
            }
            for i in range(start, start + 100)
        ]
        answer = client.post("/api/v1/messages/batch", json={"messages": batch})
        assert answer.status_code == 202, answer.text
        ids += [item["id"] for item in answer.json()["items"]]
    # queued, sent and delivered for each: 1,500 events.
    wait(lambda: len({e["id"] for e in events(receiver)}) >= 1500, timeout=120)
    time.sleep(1)
    got = events(receiver)
    assert all(c.verified_by for c in receiver.calls)  # by the standardwebhooks library
    assert len(got) == len({e["id"] for e in got}) == 1500  # once per event id
    by_message: dict[str, list[str]] = {}
    for event in got:
        by_message.setdefault(event["data"]["message_id"], []).append(event["type"])
    assert set(by_message) == set(ids)
    assert all(
        sorted(types) == ["message.delivered", "message.queued", "message.sent"]
        for types in by_message.values()
    )
    assert {e["data"]["context"]["n"] for e in got} == set(range(500))


def test_a_failing_receiver_gets_its_events_later_and_a_410_disables(
    server: Server, receiver: WebhookReceiver
) -> None:
    client = server.tenant("flaky")
    client.channel("sandbox")
    hook = subscribe(client, receiver, events=["message.delivered"], retry_schedule=[1, 1, 1])
    time.sleep(0.3)
    receiver.fail_next(1, 500)
    receiver.fail_next(1, 503)
    message = client.send()
    wait(lambda: len(received(receiver)) == 1, timeout=30)
    assert events(receiver)[0]["data"]["message_id"] == message["id"]
    deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    [delivery] = deliveries
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 204]

    receiver.fail_next(1, 410)
    client.send()
    wait(lambda: not client.get(f"/api/v1/webhooks/{hook['id']}").json()["enabled"])
    disabled = client.get(f"/api/v1/webhooks/{hook['id']}").json()
    assert "410" in (disabled.get("disabled_reason") or "")


def test_a_replay_re_delivers_exactly_its_window(server: Server, receiver: WebhookReceiver) -> None:
    client = server.tenant("replayer")
    client.channel("sandbox")
    hook = subscribe(client, receiver, events=["message.delivered"])
    time.sleep(0.3)
    first = [client.send()["id"] for _ in range(3)]
    wait(lambda: len(received(receiver)) == 3)
    time.sleep(1.1)
    since = datetime.now(UTC)
    second = [client.send()["id"] for _ in range(4)]
    wait(lambda: len(received(receiver)) == 7)
    until = datetime.now(UTC)
    time.sleep(1.1)
    client.send()
    wait(lambda: len(received(receiver)) == 8)
    answer = client.post(
        f"/api/v1/webhooks/{hook['id']}/replay",
        json={"since": since.isoformat(), "until": until.isoformat()},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["events"] == 4
    wait(lambda: len(received(receiver)) == 12)
    time.sleep(1)
    replayed = [e["data"]["message_id"] for e in events(receiver)[8:]]
    assert sorted(replayed) == sorted(second)
    assert not set(replayed) & set(first)


def test_a_rotated_secret_signs_twice_during_the_grace_period(
    server: Server, receiver: WebhookReceiver
) -> None:
    client = server.tenant("rotator")
    client.channel("sandbox")
    hook = subscribe(client, receiver, events=["message.delivered"])
    old = receiver.secrets[0]
    rotated = client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    time.sleep(0.3)
    client.send()
    wait(lambda: len(received(receiver)) == 1)
    [call] = received(receiver)
    signatures = call.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    body, headers = call.body, call.headers
    for secret in (new, old):  # each alone verifies: a receiver may hold either
        assert Webhook(secret).verify(body, headers)["type"] == "message.delivered"
    stranger = "whsec_" + "A" * 43 + "="
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(body, headers)


def test_an_inbound_route_takes_only_the_texts_it_matches(
    server: Server, receiver: WebhookReceiver
) -> None:
    client = server.tenant("router")
    client.channel("sandbox")
    subscribe(
        client,
        receiver,
        events=["message.received"],
        filters={"direction": "inbound", "text_starts_with": "order"},
    )
    time.sleep(0.3)
    for text in ("hello there", "Order 17 please", "my order"):
        answer = client.post(
            "/api/v1/channels/sandbox/simulate-inbound",
            json={
                "sender": {"type": "phone", "address": "+4791234567"},
                "content": {"type": "text", "text": text},
            },
        )
        assert answer.status_code == 202, answer.text
    wait(lambda: len(received(receiver)) == 1)
    time.sleep(1)
    [event] = events(receiver)
    assert event["type"] == "message.received"
    assert event["data"]["content"]["text"] == "Order 17 please"
    assert event["data"]["sender"]["address"] == "+4791234567"


def test_a_large_inbound_email_is_kept_whole_and_its_event_points_to_it(
    server: Server, receiver: WebhookReceiver
) -> None:
    """Service Bus takes 256 KB a message (azure review R1): an inbound message of
    150 KB is applied where it arrives, not queued, and its event leaves the content
    out (``content_omitted``) for the API to serve, so the event always travels."""
    client = server.tenant("bigmail")
    client.channel("sandbox")
    subscribe(client, receiver, events=["message.received"])
    time.sleep(0.3)
    html = "<p>" + "newsletter " * 13_600 + "</p>"
    answer = client.post(
        "/api/v1/channels/sandbox/simulate-inbound",
        json={
            "sender": {"type": "email", "address": "alice@example.org"},
            "content": {"type": "html", "html": html},
            "subject": "Our autumn catalogue",
        },
    )
    assert answer.status_code == 202, answer.text
    wait(lambda: len(received(receiver)) == 1)
    [event] = events(receiver)
    assert event["type"] == "message.received"
    assert event["data"]["content_omitted"] is True and event["data"]["content"] is None
    assert event["data"]["subject"] == "Our autumn catalogue"
    kept = client.get(f"/api/v1/messages/{event['data']['message_id']}")
    assert kept.status_code == 200 and kept.json()["content"]["html"] == html
