"""A client's view: send, track, retry, throttle, schedule, cancel, expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Client


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def types(message: dict) -> list[str]:
    return [e["type"] for e in message["events"]]


def test_a_message_is_accepted_then_sent_then_delivered(client: Client) -> None:
    accepted = client.send(context={"order": "A-17"}, tags=["otp"])
    assert accepted["id"].startswith("msg_")
    assert accepted["status"] == "queued"
    done = client.wait_for(accepted["id"], lambda m: m["status"] == "delivered")
    assert types(done) == ["message.queued", "message.sent", "message.delivered"]
    assert done["attempts"] == 1
    assert done["provider_message_id"].startswith("sbx_")
    assert done["context"] == {"order": "A-17"}
    assert all(e["at"].endswith("Z") for e in done["events"])


def test_a_transient_failure_is_retried_until_it_succeeds(client: Client) -> None:
    msg = client.send(options={"sandbox": {"send": "transient", "fail_times": 2}})
    done = client.wait_for(msg["id"], lambda m: m["status"] == "delivered")
    assert done["attempts"] == 3
    retrying = [e for e in done["events"] if e["type"] == "message.retrying"]
    assert [e["attempt"] for e in retrying] == [1, 2]
    assert retrying[0]["error"]["code"] == "SANDBOX_TRANSIENT"
    assert retrying[0]["next_attempt_at"] > retrying[0]["at"]


def test_retries_stop_at_max_attempts(client: Client) -> None:
    msg = client.send(options={"max_attempts": 2, "sandbox": {"send": "transient"}})
    done = client.wait_for(msg["id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 2
    assert done["error"]["code"] == "SANDBOX_TRANSIENT"
    assert types(done).count("message.retrying") == 1


def test_a_permanent_failure_fails_at_once_with_the_providers_code(client: Client) -> None:
    msg = client.send(options={"sandbox": {"send": "fail", "error_code": "21211"}})
    done = client.wait_for(msg["id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"] == {
        "code": "21211",
        "reason": "Simulated rejection",
        "permanent": True,
        "provider_status": "400",
    }


def test_throttling_reschedules_without_using_an_attempt(client: Client) -> None:
    msg = client.send(
        options={
            "max_attempts": 1,
            "sandbox": {"send": "throttle", "fail_times": 3, "retry_after_ms": 100},
        }
    )
    done = client.wait_for(msg["id"], lambda m: m["status"] == "delivered")
    assert done["attempts"] == 1
    assert "message.retrying" not in types(done)


def test_a_delivery_failure_after_sent_fails_the_message(client: Client) -> None:
    msg = client.send(options={"sandbox": {"delivery": "failed", "delay_ms": 50}})
    done = client.wait_for(msg["id"])
    assert done["status"] == "failed"
    assert types(done) == ["message.queued", "message.sent", "message.failed"]
    assert done["error"]["code"] == "SANDBOX_UNDELIVERED"


def test_without_delivery_receipts_sent_is_the_last_status(client: Client) -> None:
    msg = client.send(options={"sandbox": {"delivery": "none"}})
    done = client.wait_for(msg["id"], lambda m: m["status"] == "sent")
    assert types(done) == ["message.queued", "message.sent"]


def test_a_scheduled_message_waits_for_send_at(client: Client) -> None:
    msg = client.send(send_at=in_seconds(1.5))
    assert msg["status"] == "scheduled"
    assert client.get(f"/api/v1/messages/{msg['id']}").json()["status"] == "scheduled"
    done = client.wait_for(msg["id"], lambda m: m["status"] == "delivered")
    sent_at = next(e["at"] for e in done["events"] if e["type"] == "message.sent")
    assert sent_at >= msg["send_at"]


def test_a_scheduled_message_can_be_cancelled_and_is_never_sent(client: Client) -> None:
    msg = client.send(send_at=in_seconds(1))
    cancelled = client.post(f"/api/v1/messages/{msg['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/messages/{msg['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "MESSAGE_NOT_CANCELLABLE"
    import time

    time.sleep(2)
    final = client.get(f"/api/v1/messages/{msg['id']}").json()
    assert final["status"] == "cancelled"
    assert types(final) == ["message.scheduled", "message.cancelled"]


def test_a_message_that_expires_before_it_can_be_sent_is_expired(client: Client) -> None:
    paused = client.request("PATCH", "/api/v1/channels/sandbox", json={"status": "paused"})
    assert paused.status_code == 200
    try:
        msg = client.send(options={"expires_at": in_seconds(0.8)})
        import time

        time.sleep(1.2)
    finally:
        client.request("PATCH", "/api/v1/channels/sandbox", json={"status": "active"})
    done = client.wait_for(msg["id"])
    assert done["status"] == "expired"
    assert done["error"]["code"] == "EXPIRED"
    assert types(done) == ["message.queued", "message.expired"]


def test_the_same_idempotency_key_and_body_give_the_same_answer(client: Client) -> None:
    body = {
        "channel": "sandbox",
        "receiver": {"type": "email", "address": "bob@example.com"},
        "content": {"type": "text", "text": "once"},
    }
    first = client.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k-1"})
    second = client.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        "/api/v1/messages", json={**body, "subject": "x"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_batch_accepts_and_refuses_items_one_by_one(client: Client) -> None:
    good = {
        "channel": "sandbox",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
        "context": {"item": "own"},
    }
    bad = {**good, "receiver": {"type": "phone", "address": "12345"}}
    response = client.post(
        "/api/v1/messages/batch",
        json={
            "messages": [good, bad, {**good, "context": {}}],
            "context": {"campaign": "c1", "item": "batch"},
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["batch_id"].startswith("bat_")
    statuses = [(i["index"], i["status"]) for i in body["items"]]
    assert statuses == [(0, "queued"), (1, "rejected"), (2, "queued")]
    assert body["items"][1]["error"]["errors"][0]["field"] == "receiver.address"
    first = client.wait_for(body["items"][0]["id"])
    assert first["context"] == {"campaign": "c1", "item": "own"}
    third = client.get(f"/api/v1/messages/{body['items'][2]['id']}").json()
    assert third["context"] == {"campaign": "c1", "item": "batch"}
    assert third["batch_id"] == body["batch_id"]


def test_messages_are_listed_newest_first_with_filters_and_a_cursor(client: Client) -> None:
    client.channel("listing")
    ids = [client.send(channel="listing")["id"] for _ in range(5)]
    page1 = client.get("/api/v1/messages", params={"channel": "listing", "limit": 3}).json()
    page2 = client.get(
        "/api/v1/messages",
        params={"channel": "listing", "limit": 3, "cursor": page1["next_cursor"]},
    ).json()
    listed = [m["id"] for m in page1["items"] + page2["items"]]
    assert listed == list(reversed(ids))
    assert page2["next_cursor"] is None
    for m in ids:
        client.wait_for(m, lambda x: x["status"] == "delivered")
    delivered = client.get(
        "/api/v1/messages", params={"channel": "listing", "status": "delivered"}
    ).json()
    assert len(delivered["items"]) == 5
    future = client.get(
        "/api/v1/messages", params={"channel": "listing", "since": in_seconds(60)}
    ).json()
    assert future["items"] == []


def test_a_simulated_inbound_message_is_received(client: Client) -> None:
    response = client.post(
        "/api/v1/channels/sandbox/simulate-inbound",
        json={
            "sender": {"type": "phone", "address": "+4798765432"},
            "content": {"type": "text", "text": "STOP"},
        },
    )
    assert response.status_code == 202
    provider_id = response.json()["provider_message_id"]
    import time

    deadline = time.monotonic() + 10
    found = []
    while not found and time.monotonic() < deadline:
        items = client.get("/api/v1/messages", params={"direction": "inbound"}).json()["items"]
        found = [m for m in items if m["provider_message_id"] == provider_id]
        time.sleep(0.1)
    assert found, "the inbound message never arrived"
    inbound = found[0]
    assert inbound["status"] == "received"
    assert inbound["direction"] == "inbound"
    assert inbound["content"] == {"type": "text", "text": "STOP"}
    assert types(inbound) == ["message.received"]


def test_deleting_a_channel_fails_its_pending_messages(client: Client) -> None:
    client.channel("doomed")
    msg = client.send(channel="doomed", send_at=in_seconds(30))
    assert client.request("DELETE", "/api/v1/channels/doomed").status_code == 204
    done = client.get(f"/api/v1/messages/{msg['id']}").json()
    assert done["status"] == "failed"
    assert done["error"]["code"] == "CHANNEL_DELETED"
    again = client.post(
        "/api/v1/messages",
        json={
            "channel": "doomed",
            "receiver": {"type": "phone", "address": "+4791234567"},
            "content": {"type": "text", "text": "x"},
        },
    )
    assert again.status_code == 404
    assert again.json()["code"] == "CHANNEL_NOT_FOUND"
    assert client.get("/api/v1/channels/doomed").status_code == 404
    client.channel("doomed")  # the name is free again
