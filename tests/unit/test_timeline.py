"""The timeline: each status change is an entry and a pending event, in one document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.models import Document
from shared.domain.timeline import add_event, change_status, event_id, event_payload, start

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MSG = "msg_01jabcdefghjkmnpqrstvwxyz0"
ULID = MSG.removeprefix("msg_")


def new_doc(**fields: Any) -> Document:
    doc: Document = {
        "id": MSG,
        "tenant_id": "tn_1",
        "direction": "outbound",
        "channel": "sandbox",
        "channel_id": "ch_1",
        **fields,
    }
    start(doc, "queued", T0)
    return doc


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_event_ids_are_the_message_ulid_and_the_entrys_position() -> None:
    assert event_id(MSG, 0) == f"evt_{ULID}_0"
    assert event_id(MSG, 7) == f"evt_{ULID}_7"


def test_a_new_message_starts_with_its_first_event_pending() -> None:
    doc = new_doc()
    assert doc["status"] == "queued"
    assert doc["events"] == [
        {
            "id": f"evt_{ULID}_0",
            "type": "message.queued",
            "status": "queued",
            "at": "2030-01-01T12:00:00.000Z",
        }
    ]
    assert doc["pending_events"] == [f"evt_{ULID}_0"]
    assert doc["events_at"] == "2030-01-01T12:00:00.000Z"


def test_a_status_change_appends_an_entry_and_a_pending_event() -> None:
    doc = new_doc()
    assert change_status(doc, "sent", at(5), attempt=1, provider_message_id="p-1")
    assert doc["status"] == "sent"
    assert doc["updated_at"] == "2030-01-01T12:00:05.000Z"
    assert doc["provider_message_id"] == "p-1"
    assert doc["events"][-1] == {
        "id": f"evt_{ULID}_1",
        "type": "message.sent",
        "status": "sent",
        "attempt": 1,
        "provider_message_id": "p-1",
        "at": "2030-01-01T12:00:05.000Z",
    }
    assert doc["pending_events"] == [f"evt_{ULID}_0", f"evt_{ULID}_1"]


def test_the_outbox_time_is_that_of_the_oldest_pending_event() -> None:
    doc = new_doc()
    change_status(doc, "sent", at(5))
    assert doc["events_at"] == "2030-01-01T12:00:00.000Z"


def test_the_same_changes_give_the_same_event_ids() -> None:
    one, two = new_doc(), new_doc()
    for doc in (one, two):
        change_status(doc, "sent", at(1))
        change_status(doc, "delivered", at(2))
    assert [e["id"] for e in one["events"]] == [e["id"] for e in two["events"]]


def test_sending_is_recorded_as_the_status_but_emits_no_event() -> None:
    doc = new_doc()
    assert change_status(doc, "sending", at(1))
    assert doc["status"] == "sending"
    assert len(doc["events"]) == 1
    assert doc["pending_events"] == [f"evt_{ULID}_0"]


def test_a_late_sent_after_delivered_is_recorded_without_an_event() -> None:
    doc = new_doc()
    change_status(doc, "delivered", at(1))
    pending = list(doc["pending_events"])
    assert not change_status(doc, "sent", at(2), provider_message_id="late")
    assert doc["status"] == "delivered"
    assert doc["events"][-1] == {
        "type": "status.ignored",
        "status": "sent",
        "at": "2030-01-01T12:00:02.000Z",
        "provider_message_id": "late",
    }
    assert doc["pending_events"] == pending
    assert doc.get("provider_message_id") is None


def test_a_failure_records_its_error_on_the_message() -> None:
    doc = new_doc()
    error = {"code": "X", "reason": "no", "permanent": True}
    change_status(doc, "failed", at(1), error=error)
    assert doc["error"] == error
    assert doc["events"][-1]["error"] == error


def test_an_event_that_is_not_a_status_change_keeps_the_status() -> None:
    doc = new_doc()
    eid = add_event(doc, "message.retrying", at(3), attempt=1, next_attempt_at="soon")
    assert eid == f"evt_{ULID}_1"
    assert doc["status"] == "queued"
    assert doc["events"][-1]["status"] == "queued"
    assert eid in doc["pending_events"]


def test_a_payload_carries_the_context_and_the_event() -> None:
    doc = new_doc(context={"order": "A-17"}, tags=["otp"])
    change_status(doc, "sent", at(1), attempt=1, provider_message_id="p-1")
    payload = event_payload(doc, doc["events"][1])
    assert payload["id"] == f"evt_{ULID}_1"
    assert payload["type"] == "message.sent"
    assert payload["timestamp"] == "2030-01-01T12:00:01.000Z"
    assert payload["tenant_id"] == "tn_1"
    data = payload["data"]
    assert data["message_id"] == MSG
    assert data["context"] == {"order": "A-17"}
    assert data["tags"] == ["otp"]
    assert (data["status"], data["attempt"], data["provider_message_id"]) == ("sent", 1, "p-1")
    assert "sender" not in data  # outbound payloads do not repeat the message


def test_a_payload_without_context_carries_an_empty_one() -> None:
    doc = new_doc()
    assert event_payload(doc, doc["events"][0])["data"]["context"] == {}


def test_a_retrying_payload_says_when_the_next_attempt_is() -> None:
    doc = new_doc()
    add_event(doc, "message.retrying", at(3), attempt=1, next_attempt_at="2030-01-01T12:00:07Z")
    data = event_payload(doc, doc["events"][-1])["data"]
    assert data["next_attempt_at"] == "2030-01-01T12:00:07Z"


def test_an_inbound_payload_carries_sender_receiver_and_content() -> None:
    sender = {"type": "phone", "address": "+4791234567"}
    receiver = {"type": "phone", "address": "+14155552671"}
    content = {"type": "text", "text": "STOP"}
    doc: Document = {
        "id": MSG,
        "tenant_id": "tn_1",
        "direction": "inbound",
        "sender": sender,
        "receiver": receiver,
        "content": content,
        "subject": None,
        "context": {},
    }
    start(doc, "received", T0)
    data = event_payload(doc, doc["events"][0])["data"]
    assert data["direction"] == "inbound"
    assert (data["sender"], data["receiver"], data["content"]) == (sender, receiver, content)
    assert event_payload(doc, doc["events"][0])["type"] == "message.received"
